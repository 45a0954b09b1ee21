"""The audit log page, API and CSV export: who may read it, filters, pagination, the
export audited, and no way to change or delete an event; on both databases."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.store.models import AuditEventRow
from bot.web.audit import audit, note_client
from tests.web.conftest import login

BASE = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def seed(engine: Engine, n: int = 12) -> None:
    """``n`` events a day apart (odd ones by lin, with a phone number in the detail)."""
    with Session(engine) as s:
        for i in range(n):
            row = audit(s, "lin" if i % 2 else "wang", "call_viewed" if i % 3 else "verdict",
                        "call", i, note=f"called 1380000{i:04d}")  # fmt: skip
            row.at = BASE + dt.timedelta(days=i)
        s.commit()


def all_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route, including those of included routers (whatever wraps them)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        yield from all_routes(inner.routes) if inner is not None else (r,)


def count(engine: Engine) -> int:
    with Session(engine) as s:
        return len(s.exec(select(AuditEventRow)).all())


def test_who_may_read_the_log(app_client: TestClient, engine: Engine) -> None:
    seed(engine, 2)
    assert app_client.get("/api/v1/audit").status_code == 401
    assert app_client.get("/audit").status_code == 303
    for role in ("reviewer", "compliance"):
        login(app_client, role)
        assert app_client.get("/api/v1/audit").status_code == 403
        page = app_client.get("/audit")
        assert page.status_code == 403 and "called" not in page.text
        assert app_client.get("/audit.csv").status_code == 403
    for role in ("supervisor", "admin"):
        login(app_client, role)
        assert app_client.get("/api/v1/audit").status_code == 200
        page = app_client.get("/audit")
        assert page.status_code == 200 and 'href="/calls/1"' in page.text
    with Session(engine) as s:
        denied = s.exec(select(AuditEventRow).where(AuditEventRow.action == "access_denied")).all()
    assert {(e.actor, e.object_id) for e in denied} == {
        (r, p)
        for r in ("reviewer", "compliance")
        for p in ("/api/v1/audit", "/audit", "/audit.csv")
    }


def test_filters_pagination_newest_first_and_masking(
    app_client: TestClient, engine: Engine
) -> None:
    seed(engine)
    login(app_client, "supervisor")  # a login event, "now" (after the seeded ones)
    app_client.app.state.web = app_client.app.state.web.model_copy(update={"page_size": 5})  # type: ignore[attr-defined]
    pages = [app_client.get(f"/api/v1/audit?page={n}").json() for n in (1, 2, 3)]
    assert pages[0]["total"] == 13 and pages[0]["pages"] == 3
    events = [e for p in pages for e in p["items"]]
    assert events[0]["action"] == "login"
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
    assert len({e["id"] for e in events}) == 13
    assert all("13800000" not in json.dumps(e) for e in events)  # free text masked
    assert events[1]["detail"] == {"note": "called 138****0011"}

    def ids(query: str) -> list[str]:
        body = app_client.get(f"/api/v1/audit?{query}").json()
        assert body["total"] == len(body["items"]) or body["page_size"] == len(body["items"])
        return [e["object_id"] for e in body["items"]]

    assert ids("actor=lin&page=1") == ["11", "9", "7", "5", "3"]
    assert ids("action=verdict") == ["9", "6", "3", "0"]
    assert ids("actor=wang&action=verdict") == ["6", "0"]
    assert ids("date_from=2026-11-22&date_to=2026-11-24") == ["4", "3", "2"]
    assert ids("actor=&action=&date_from=") == [e["object_id"] for e in pages[0]["items"]]
    assert app_client.get("/api/v1/audit?date_to=someday").status_code == 400
    page = app_client.get("/audit?action=verdict&page=1")
    assert page.status_code == 200 and "共 4 条事件" in page.text
    assert "13800000" not in page.text and 'href="/audit.csv?action=verdict"' in page.text
    assert 'rel="next"' in app_client.get("/audit?page=1").text


def test_export_is_audited_and_complete(app_client: TestClient, engine: Engine) -> None:
    seed(engine)
    login(app_client, "admin")
    r = app_client.get("/audit.csv?actor=lin")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["object_id"] for x in rows] == ["11", "9", "7", "5", "3", "1"]
    assert json.loads(rows[0]["detail"]) == {"note": "called 138****0011"}
    everything = list(csv.DictReader(io.StringIO(app_client.get("/audit.csv").text)))
    assert everything[0]["action"] == "audit_exported"  # the export is in its own file
    with Session(engine) as s:
        exports = s.exec(
            select(AuditEventRow)
            .where(AuditEventRow.action == "audit_exported")
            .order_by(col(AuditEventRow.id))
        ).all()
    assert [(e.actor, e.detail) for e in exports] == [
        ("admin", {"filters": {"actor": "lin"}, "_client": "testclient"}),
        ("admin", {"filters": {}, "_client": "testclient"}),
    ]
    assert len(everything) == count(engine)


def test_the_log_is_append_only(app_client: TestClient, engine: Engine) -> None:
    seed(engine, 3)
    token = login(app_client, "admin")
    routes = [r for r in all_routes(app_client.app.routes) if "audit" in getattr(r, "path", "")]  # type: ignore[attr-defined]
    assert {r.path for r in routes} == {"/audit", "/audit.csv", "/api/v1/audit"}
    assert all(set(r.methods) <= {"GET", "HEAD"} for r in routes)
    before = count(engine)
    with Session(engine) as s:
        first = s.exec(select(AuditEventRow).order_by(col(AuditEventRow.id))).first()
        assert first is not None
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/v1/audit", f"/api/v1/audit/{first.id}", "/audit", f"/audit/{first.id}"):
            r = app_client.request(method, path, headers={"X-CSRF-Token": token}, json={})
            assert r.status_code in (404, 405), (method, path, r.status_code)
    assert count(engine) == before
    with Session(engine) as s:
        again = s.get(AuditEventRow, first.id)
        assert again is not None and again.detail == first.detail and again.actor == first.actor


def test_the_page_shows_events_readably_in_chinese_and_english(
    app_client: TestClient, engine: Engine
) -> None:
    """Actors by kind and name, actions and detail keys translated, vocabulary values by
    their labels, the client's address; the CSV keeps the stored keys and values."""
    with Session(engine) as s:
        note_client(s, "10.1.2.3")
        audit(s, "token:nightly", "campaign_pause", "campaign", 7, name="双十一",
              before="running", after="paused")  # fmt: skip
        audit(s, "worker:host-a:12", "verdict", "review_item", 3, agree=False,
              disposition="suspend_non_counter", reason="客户确认出借")  # fmt: skip
        s.commit()
    login(app_client, "supervisor")
    zh = app_client.get("/audit").text
    assert "令牌 nightly" in zh and "外呼进程 host-a:12" in zh and "用户 supervisor" in zh
    assert ">暂停外呼任务<" in zh and ">提交复核结论<" in zh and ">登录<" in zh
    assert '<dt data-key="before">修改前</dt><dd>运行中</dd>' in zh
    assert '<dt data-key="after">修改后</dt><dd>已暂停</dd>' in zh
    assert '<dt data-key="name">名称</dt><dd>双十一</dd>' in zh
    assert '<dt data-key="disposition">处置</dt><dd>暂停非柜面交易</dd>' in zh
    assert '<dt data-key="agree">认同</dt><dd>否</dd>' in zh
    assert '<dt data-key="reason">原因</dt><dd>客户确认出借</dd>' in zh
    assert '<td class="client">10.1.2.3</td>' in zh
    assert "suspend_non_counter" not in zh and "_client" not in zh
    assert '<option value="campaign_pause" >暂停外呼任务</option>' in zh
    en = app_client.get("/audit?lang=en").text
    assert "token nightly" in en and "worker host-a:12" in en and "user supervisor" in en
    assert ">Campaign paused<" in en and '<dt data-key="before">Before</dt><dd>Running</dd>' in en
    assert "<dd>Suspend non-counter transactions</dd>" in en and "暂停非柜面交易" not in en
    rows = list(csv.DictReader(io.StringIO(app_client.get("/audit.csv?action=verdict").text)))
    assert json.loads(rows[0]["detail"]) == {
        "agree": False, "disposition": "suspend_non_counter", "reason": "客户确认出借",
        "_client": "10.1.2.3",
    }  # fmt: skip


def test_date_filters_are_days_in_the_teams_time_zone(
    app_client: TestClient, engine: Engine
) -> None:
    """2026-11-20 17:00 UTC is 01:00 on the 21st in Shanghai (web.timezone's default)."""
    with Session(engine) as s:
        for hour in (15, 17):
            row = audit(s, "lin", "call_viewed", "call", hour)
            row.at = dt.datetime(2026, 11, 20, hour, 0, tzinfo=dt.UTC)
        s.commit()
    login(app_client, "supervisor")
    day = app_client.get("/api/v1/audit?actor=lin&date_from=2026-11-21&date_to=2026-11-21")
    assert [e["object_id"] for e in day.json()["items"]] == ["17"]
    before = app_client.get("/api/v1/audit?actor=lin&date_to=2026-11-20")
    assert [e["object_id"] for e in before.json()["items"]] == ["15"]
