"""The call list, its CSV export, the call detail, the recording and revealing personal
data: roles, CSRF, masking, audit and filters, on both databases."""

from __future__ import annotations

import csv
import io
import re
import wave
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.store.models import (
    AccountRow,
    AuditEventRow,
    CallRow,
    CampaignAccountRow,
    EntityLinkRow,
    EntityRow,
    ReviewItemRow,
    TurnRow,
)
from bot.web.i18n import translations
from bot.web.labels import label
from tests.web.conftest import login
from tests.web.factories import populate

#: Every persona's phone number, unmasked (none may leak outside a reveal).
RAW_PHONES = [f"1380000{i:04d}" for i in range(1, 11)]
RAW_ACCOUNTS = [f"62258801000000{i:02d}" for i in range(1, 11)]


def assert_masked(text: str) -> None:
    leaked = [n for n in RAW_PHONES + RAW_ACCOUNTS if n in text]
    assert not leaked, f"unmasked numbers: {leaked}"


def actions(engine: Engine, action: str) -> list[AuditEventRow]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(AuditEventRow)
                .where(AuditEventRow.action == action)
                .order_by(col(AuditEventRow.id))
            )
        )


def call_of(engine: Engine, account_id: str) -> CallRow:
    with Session(engine) as s:
        return s.exec(
            select(CallRow)
            .join(AccountRow, col(AccountRow.id) == CallRow.account_pk)
            .where(AccountRow.account_id == account_id)
        ).one()


def api_ids(client: TestClient, query: str = "") -> set[int]:
    r = client.get(f"/api/v1/calls?{query}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"])  # one page is enough for ten calls
    return {c["id"] for c in body["items"]}


def test_list_filters_pagination_and_masking(app_client: TestClient, engine: Engine) -> None:
    campaign = populate(engine)
    with Session(engine, expire_on_commit=False) as s:
        calls = list(s.exec(select(CallRow)))
        branch = {a.id: a.branch for a in s.exec(select(AccountRow))}
        review = {r.call_id: r.state for r in s.exec(select(ReviewItemRow))}
        s.add(CallRow(account_pk=calls[0].account_pk, outcome="no_answer"))  # no campaign item
        s.commit()
    login(app_client, "reviewer")
    everything = {c.id for c in calls}
    extra = api_ids(app_client) - everything
    assert len(extra) == 1
    for query, expect in [
        ("outcome=completed", {c.id for c in calls if c.outcome == "completed"}),
        ("band=high", {c.id for c in calls if c.risk_band == "high"}),
        ("band=none", {c.id for c in calls if c.risk_band is None} | extra),
        ("disposition=clear", {c.id for c in calls if c.disposition == "clear"}),
        ("review=open", {c.id for c in calls if review.get(c.id) == "open"}),
        ("review=none", {c.id for c in calls if c.id not in review} | extra),
        ("review=done", set()),
        ("branch=shenzhen", {c.id for c in calls if branch[c.account_pk] == "shenzhen"}),
        (f"campaign={campaign}", everything),
        (f"campaign={campaign + 1}", set()),
        ("date_from=2026-11-23&date_to=2026-11-23", everything),
        ("date_from=2026-11-24", extra),  # the extra call started "now" (after the campaign)
        ("date_to=2026-11-22", set()),
        ("outcome=&band=&review=", everything | extra),  # blank = any (the page's form)
    ]:
        assert api_ids(app_client, query) == expect, query
    assert 0 < len(api_ids(app_client, "band=high")) < len(everything)
    assert app_client.get("/api/v1/calls?band=purple").status_code == 400
    assert app_client.get("/api/v1/calls?date_from=yesterday").status_code == 400

    app_client.app.state.web = app_client.app.state.web.model_copy(update={"page_size": 5})  # type: ignore[attr-defined]
    pages = [app_client.get(f"/api/v1/calls?page={n}").json() for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [5, 5, 1]
    assert pages[0]["total"] == 11 and pages[0]["pages"] == 3
    ids = [c["id"] for p in pages for c in p["items"]]
    assert sorted(ids) == sorted(everything | extra) and ids[0] in extra  # newest first
    started = [c["started_at"] for p in pages for c in p["items"]]
    assert started == sorted(started, reverse=True)
    assert app_client.get("/api/v1/calls?page=4").json()["items"] == []
    first = pages[0]["items"][1]
    assert re.fullmatch(r"\+86 138\*{4}\d{4}", first["phone"])
    assert re.fullmatch(r"\*{12}\d{4}", first["account_id"])

    page = app_client.get("/calls?band=high")
    assert page.status_code == 200
    high = {c.id for c in calls if c.risk_band == "high"}
    assert set(map(int, re.findall(r'href="/calls/(\d+)"', page.text))) == high
    assert 'href="/calls.csv?band=high"' in page.text
    page2 = app_client.get("/calls?page=2")
    assert 'rel="prev"' in page2.text and 'rel="next"' in page2.text
    for r in (page, page2, app_client.get("/api/v1/calls")):
        assert_masked(r.text)


def test_csv_export_is_masked_filtered_and_audited(app_client: TestClient, engine: Engine) -> None:
    populate(engine)
    login(app_client, "compliance")
    r = app_client.get("/calls.csv?band=high")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    with Session(engine) as s:
        high = s.exec(select(CallRow).where(CallRow.risk_band == "high")).all()
    assert sorted(int(x["call_id"]) for x in rows) == sorted(c.id for c in high)
    assert {x["risk_band"] for x in rows} == {"high"}
    assert all(x["phone"].startswith("'+86 138****") for x in rows)  # formula-guarded
    assert_masked(r.text)
    (event,) = actions(engine, "calls_exported")
    assert event.actor == "compliance"
    assert event.detail == {"filters": {"band": "high"}, "rows": len(high), "_client": "testclient"}


def _add_sensitive_turn(engine: Engine, call_id: int) -> tuple[int, str]:
    """Put a spoken phone number and a negated entity into a callee turn of the call."""
    with Session(engine) as s:
        turn = s.exec(
            select(TurnRow)
            .where(TurnRow.call_id == call_id, TurnRow.role == "callee")
            .order_by(col(TurnRow.idx))
        ).first()
        assert turn is not None
        turn.text = "不是王五，我的电话是13800000002"
        s.add(turn)
        for old in s.exec(
            select(EntityRow).where(EntityRow.call_id == call_id, EntityRow.turn_idx == turn.idx)
        ):
            for link in s.exec(select(EntityLinkRow).where(EntityLinkRow.entity_id == old.id)):
                s.delete(link)  # the network's links to it go first (foreign key)
            s.flush()
            s.delete(old)
        s.add(EntityRow(call_id=call_id, turn_idx=turn.idx, label="person", value="王五",
                        text="王五", start=2, end=4, negated=True))  # fmt: skip
        s.add(EntityRow(call_id=call_id, turn_idx=turn.idx, label="phone",
                        value="+8613800000002", text="13800000002", start=10, end=21))  # fmt: skip
        s.commit()
        return turn.idx, turn.text


def test_call_detail_reveal_and_recording(
    app_client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    populate(engine)
    call = call_of(engine, "6225880100000002")
    idx, _ = _add_sensitive_turn(engine, call.id or 0)
    login(app_client, "reviewer")
    page = app_client.get(f"/calls/{call.id}")
    assert page.status_code == 200
    html = page.text
    assert_masked(html)
    assert 'class="ent neg" data-label="person"' in html  # the negated entity
    assert re.search(
        r'<mark class="ent" data-label="phone" title="phone: \+86 138\*\*\*\*0002">138\*\*\*\*0002</mark>',
        html,
    )
    assert "李娜" in html and "尾号 0002" in html and "¥49,800.00" in html  # panorama
    assert 'data-value="suspend_non_counter">暂停非柜面交易<' in html and "评分依据" in html
    assert ">suspend_non_counter<" not in html  # the label, never the value, is shown
    assert "collect_for_others" in html or "代收" in html  # a rule that fired
    assert f'id="turn-{idx}"' in html and "查看个人信息明文" not in html  # reviewer
    assert "/network" not in html  # a reviewer may not view the network
    assert 'src="/calls/' not in html  # a text call has no recording
    assert [(e.actor, e.object_id) for e in actions(engine, "call_viewed")] == [
        ("reviewer", str(call.id))
    ]
    api = app_client.get(f"/api/v1/calls/{call.id}").json()
    assert_masked(str(api))
    assert api["account"]["card_last4"] == "0002" and api["score"]["rules"]
    rule = api["score"]["rules"][0]
    assert {"feature", "weight", "contribution", "evidence"} <= set(rule)
    turn = next(t for t in api["turns"] if t["idx"] == idx)
    assert turn["text"].endswith("138****0002")
    assert {e["label"]: e["negated"] for e in turn["entities"]} == {"person": True, "phone": False}
    assert app_client.get("/calls/99999").status_code == 404
    assert app_client.get("/api/v1/calls/99999").status_code == 404

    # the reviewer may not reveal (page and API): 403, audited by the app
    token = login(app_client, "reviewer")
    denied = app_client.post(
        f"/calls/{call.id}/reveal", data={"reason": "checking the case", "csrf_token": token}
    )
    assert denied.status_code == 403 and "13800000002" not in denied.text
    assert app_client.post(f"/api/v1/calls/{call.id}/reveal", json={"reason": "checking"},
                           headers={"X-CSRF-Token": token}).status_code == 403  # fmt: skip
    token = login(app_client, "compliance")
    assert app_client.post(f"/api/v1/calls/{call.id}/reveal", json={"reason": "checking"},
                           headers={"X-CSRF-Token": token}).status_code == 403  # fmt: skip
    assert len(actions(engine, "access_denied")) == 3

    token = login(app_client, "supervisor")
    detail = app_client.get(f"/calls/{call.id}")
    assert "查看个人信息明文" in detail.text
    assert f'href="/accounts/{call.account_pk}/network" id="account-network"' in detail.text
    no_csrf = app_client.post(
        f"/calls/{call.id}/reveal", data={"reason": "case 2026-118 escalation"}
    )
    assert no_csrf.status_code == 403 and "13800000002" not in no_csrf.text
    short = app_client.post(
        f"/calls/{call.id}/reveal", data={"reason": " ab ", "csrf_token": token}
    )
    assert short.status_code == 400 and "至少 5 个字符" in short.text
    assert_masked(short.text)
    assert actions(engine, "pii_revealed") == []
    shown = app_client.post(
        f"/calls/{call.id}/reveal", data={"reason": "case 2026-118 escalation", "csrf_token": token}
    )
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    assert "+8613800000002" in shown.text and "6225880100000002" in shown.text
    assert "我的电话是" in shown.text and ">13800000002</mark>" in shown.text
    (event,) = actions(engine, "pii_revealed")
    assert (event.actor, event.object_id, event.detail["reason"]) == (
        "supervisor",
        str(call.id),
        "case 2026-118 escalation",
    )
    assert event.detail["_client"] == "testclient"  # the client's address
    assert_masked(app_client.get(f"/calls/{call.id}").text)  # the next view is masked again

    api_short = app_client.post(f"/api/v1/calls/{call.id}/reveal", json={"reason": "x"},
                                headers={"X-CSRF-Token": token})  # fmt: skip
    assert api_short.status_code == 422
    assert (
        app_client.post(
            f"/api/v1/calls/{call.id}/reveal", json={"reason": "fraud ring"}
        ).status_code
        == 403
    )  # no CSRF header
    revealed = app_client.post(f"/api/v1/calls/{call.id}/reveal", json={"reason": "fraud ring"},
                               headers={"X-CSRF-Token": token})  # fmt: skip
    assert revealed.status_code == 200
    body = revealed.json()
    assert body["phone"] == "+8613800000002" and body["account_id"] == "6225880100000002"
    assert body["entities"] == [{"turn_idx": idx, "label": "phone", "text": "13800000002",
                                 "value": "+8613800000002"}]  # fmt: skip
    assert len(actions(engine, "pii_revealed")) == 2

    # recording: 404 without one, streamed with Range support, one audit event per play
    assert app_client.get(f"/calls/{call.id}/recording").status_code == 404
    app_client.app.state.settings = app_client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"recordings_dir": tmp_path}
    )
    wav = tmp_path / "call.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 4000)
    outside = tmp_path.parent / "elsewhere.wav"
    outside.write_bytes(wav.read_bytes())
    with Session(engine) as s:
        row = s.get(CallRow, call.id)
        assert row is not None
        row.recording_path = str(outside)
        s.add(row)
        s.commit()
    assert app_client.get(f"/calls/{call.id}/recording").status_code == 404  # not under the dir
    with Session(engine) as s:
        row = s.get(CallRow, call.id)
        assert row is not None
        row.recording_path = "call.wav"  # relative to the recordings directory
        s.add(row)
        s.commit()
    assert f'src="/calls/{call.id}/recording"' in app_client.get(f"/calls/{call.id}").text
    full = app_client.get(f"/calls/{call.id}/recording")
    assert full.status_code == 200 and full.headers["content-type"] == "audio/wav"
    assert full.content == wav.read_bytes()
    part = app_client.get(f"/calls/{call.id}/recording", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == wav.read_bytes()[100:200]
    assert [e.actor for e in actions(engine, "recording_played")] == ["supervisor"]


def _turn_texts(html: str) -> dict[int, str]:
    """Each transcript turn's visible text on a page (entity marks removed, unescaped)."""
    found = re.findall(
        r'id="turn-(\d+)" data-idx.*?<span class="text">(.*?)</span>', html, flags=re.S
    )
    return {int(i): unescape(re.sub(r"<[^>]+>", "", text)) for i, text in found}


def test_the_pages_and_the_api_show_one_masked_call(app_client: TestClient, engine: Engine) -> None:
    """The call detail, the review item page and the API render one view model: the same
    masked characters for every turn, the error and the account."""
    populate(engine)
    call = call_of(engine, "6225880100000002")
    idx, _ = _add_sensitive_turn(engine, call.id or 0)
    with Session(engine) as s:
        row = s.get(CallRow, call.id)
        assert row is not None
        row.error = "gateway refused 13800000002 (ID 110101199003077777)"
        s.add(row)
        s.commit()
        item = s.exec(select(ReviewItemRow).where(ReviewItemRow.call_id == call.id)).one()
        item_id = item.id
    login(app_client, "reviewer")
    api = app_client.get(f"/api/v1/calls/{call.id}").json()
    detail = app_client.get(f"/calls/{call.id}").text
    review = app_client.get(f"/review/{item_id}").text
    assert_masked(detail + review + str(api))
    assert "110101199003077777" not in detail + review + str(api)
    from_api = {t["idx"]: t["text"] for t in api["turns"]}
    assert from_api[idx] == "不是王五，我的电话是138****0002"
    assert all(t["text"] == "".join(p["text"] for p in t["pieces"]) for t in api["turns"])
    assert _turn_texts(detail) == from_api
    assert _turn_texts(review) == from_api
    assert api["error"] and unescape(api["error"]) in unescape(detail)
    assert api["error"] in unescape(review)
    assert api["account"]["phone"] in detail and api["account"]["phone"] in review
    # what each answer meant, by its Chinese label (the code stays in data-value)
    zh = translations("zh_CN").gettext
    readings = {r for t in api["turns"] for r in t["reading"]}
    assert readings
    for r in readings:
        shown = f'data-value="{r}">{label("reading", r, zh)}<'
        assert shown in detail and shown in review and label("reading", r, zh) != r


def test_every_role_sees_calls_and_strangers_do_not(app_client: TestClient, engine: Engine) -> None:
    assert app_client.get("/api/v1/calls").status_code == 401
    assert app_client.get("/calls").status_code == 303
    assert app_client.get("/calls.csv").headers["location"].startswith("/login")
    for role in ("reviewer", "compliance", "supervisor", "admin"):
        login(app_client, role)
        assert app_client.get("/api/v1/calls").json()["total"] == 0
        assert "没有符合条件的通话。" in app_client.get("/calls").text
    with Session(engine) as s:
        assert s.exec(select(CampaignAccountRow)).all() == []
