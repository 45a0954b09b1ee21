"""The campaign monitor, its big screen and its API, on both databases: role checks,
figures recomputed independently from the stored calls, alerts at their thresholds,
well-formed SVG with escaped labels, and no state change on GET."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.store.models import (
    AccountRow,
    AuditEventRow,
    CallRow,
    CampaignAccountRow,
    CampaignRow,
)
from bot.web.config import MonitorThresholds
from bot.web.routes.monitor import thresholds_of
from bot.web.stats import alerts_for, interpolate
from tests.web.conftest import login
from tests.web.factories import populate

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)  # the test clock
SEQ = itertools.count(1)


def add_campaign(engine: Engine, name: str, state: str = "running") -> int:
    with Session(engine) as s:
        c = CampaignRow(name=name, state=state)
        s.add(c)
        s.commit()
        assert c.id is not None
        return c.id


def add_calls(
    engine: Engine,
    campaign_id: int,
    outcomes: list[str],
    *,
    start: dt.datetime = NOW - dt.timedelta(hours=3),
    every: dt.timedelta = dt.timedelta(seconds=10),
    **fields: Any,
) -> list[int]:
    """One finished call per outcome (each on its own account and work item), started
    ``every`` apart from ``start``; returns the call ids."""
    ids = []
    with Session(engine) as s:
        for i, outcome in enumerate(outcomes):
            acc = AccountRow(
                account_id=f"62{next(SEQ):010d}",
                name="王五", phone="13900000000", phone_e164="+8613900000000",
                scenario="dormant", model_score=0.4,
            )  # fmt: skip
            s.add(acc)
            s.flush()
            item = CampaignAccountRow(
                campaign_id=campaign_id, account_pk=acc.id or 0, state="done", attempts=1
            )
            s.add(item)
            s.flush()
            call = CallRow(
                campaign_account_id=item.id, account_pk=acc.id or 0,
                started_at=start + i * every, outcome=outcome, duration_s=30.0 + i,
                disposition="clear", **fields,
            )  # fmt: skip
            s.add(call)
            s.flush()
            ids.append(call.id or 0)
        s.commit()
    return ids


def add_items(
    engine: Engine, campaign_id: int, states: list[tuple[str, dt.datetime | None]]
) -> None:
    """Work items without calls: (state, lease expiry)."""
    with Session(engine) as s:
        for state, lease in states:
            acc = AccountRow(
                account_id=f"63{next(SEQ):010d}", name="赵六", phone="13700000000",
                phone_e164="+8613700000000", scenario="dormant", model_score=0.4,
            )  # fmt: skip
            s.add(acc)
            s.flush()
            s.add(
                CampaignAccountRow(
                    campaign_id=campaign_id,
                    account_pk=acc.id or 0,
                    state=state,
                    lease_owner="w1" if lease else None,
                    lease_expires_at=lease,
                )
            )
        s.commit()


def get_monitor(
    client: TestClient, campaign: str | None = None, days: int | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"campaign": campaign} if campaign else {}
    if days is not None:
        params["days"] = days
    r = client.get("/api/v1/monitor", params=params)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def svgs(html: str) -> list[ET.Element]:
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    return [ET.fromstring(s) for s in found]


# -- access -----------------------------------------------------------------------------


PATHS = ("/monitor", "/monitor/screen", "/api/v1/monitor")


def test_only_supervisors_and_admins_see_the_monitor(
    app_client: TestClient, engine: Engine
) -> None:
    for path in PATHS:
        assert app_client.get(path).status_code == (401 if path.startswith("/api/") else 303)
    for name in ("reviewer", "compliance"):
        login(app_client, name)
        for path in PATHS:
            r = app_client.get(path)
            assert r.status_code == 403, (name, path, r.status_code)
            assert "view_monitor" in r.text and "Campaign monitor" not in r.text
    for name in ("supervisor", "admin"):
        login(app_client, name)
        for path in PATHS:
            assert app_client.get(path).status_code == 200, (name, path)
    with Session(engine) as s:
        denied = s.exec(select(AuditEventRow).where(AuditEventRow.action == "access_denied")).all()
    assert [(e.actor, e.object_id) for e in denied] == [
        (name, path) for name in ("reviewer", "compliance") for path in PATHS
    ]
    # An unknown campaign is a 404, on the page and in the API.
    assert app_client.get("/api/v1/monitor?campaign=nope").status_code == 404
    page = app_client.get("/monitor?campaign=nope")
    assert page.status_code == 404 and "nope" in page.text


# -- figures ----------------------------------------------------------------------------


def expected_figures(engine: Engine) -> dict[str, Any]:
    """The monitor's overall figures, recomputed in Python from every stored call."""
    with Session(engine) as s:
        calls = [c for c in s.exec(select(CallRow)).all() if c.outcome is not None]
        items = s.exec(select(CampaignAccountRow)).all()
    outcomes = Counter(c.outcome for c in calls)
    connected = [c for c in calls if c.outcome not in ("no_answer", "busy", "failed")]
    lat = [c.latency_p50_ms for c in calls if c.latency_p50_ms is not None]
    lat95 = [c.latency_p95_ms for c in calls if c.latency_p95_ms is not None]
    return {
        "calls": len(calls),
        "outcomes": dict(outcomes),
        "dispositions": dict(Counter(c.disposition for c in calls if c.disposition)),
        "connect_rate": len(connected) / len(calls),
        "avg_duration_s": sum(c.duration_s or 0 for c in calls) / len(calls),
        "failures": outcomes["failed"],
        "queue": Counter(i.state for i in items),
        "p50": (float(np.percentile(lat, 50)), float(np.percentile(lat, 95))) if lat else None,
        "p95": (float(np.percentile(lat95, 50)), float(np.percentile(lat95, 95)))
        if lat95
        else None,
    }


def test_figures_match_the_stored_calls(app_client: TestClient, engine: Engine) -> None:
    personas = populate(engine)
    other = add_campaign(engine, "dec-dormant")
    add_calls(engine, other, ["failed", "no_answer", "busy", "completed", "refused"])
    add_items(engine, other, [("queued", None), ("queued", None), ("in_progress", NOW + dt.timedelta(minutes=1)),
                              ("in_progress", NOW - dt.timedelta(minutes=1))])  # fmt: skip
    rng = np.random.default_rng(7)
    with Session(engine) as s:  # voice latencies on some calls (text-mode calls have none)
        for call in s.exec(select(CallRow).where(col_id_mod(3))).all():
            call.latency_p50_ms = float(rng.integers(300, 1500))
            call.latency_p95_ms = call.latency_p50_ms + float(rng.integers(0, 900))
            s.add(call)
        s.commit()
    want = expected_figures(engine)
    login(app_client, "supervisor")
    data = get_monitor(app_client, days=0)  # all time: the personas were called 8 days ago
    assert data["since"] is None
    got = data["overall"]["figures"]
    assert got["calls"] == want["calls"] == 15
    assert got["outcomes"] == want["outcomes"]
    assert got["dispositions"] == want["dispositions"]
    assert got["connect_rate"] == pytest.approx(want["connect_rate"])
    assert got["avg_duration_s"] == pytest.approx(want["avg_duration_s"])
    assert got["failures"] == want["failures"] == 1
    assert want["p50"] is not None and want["p95"] is not None
    assert (got["latency_p50_ms"]["p50"], got["latency_p50_ms"]["p95"]) == pytest.approx(
        want["p50"]
    )
    assert (got["latency_p95_ms"]["p50"], got["latency_p95_ms"]["p95"]) == pytest.approx(
        want["p95"]
    )
    queue = data["overall"]["queue"]
    assert queue == {"queued": 2, "in_progress": 2, "stale": 1, "done": 15, "cancelled": 0,
                     "total": 19} and want["queue"]["done"] == 15  # fmt: skip
    by_name = {c["name"]: c for c in data["campaigns"]}
    assert set(by_name) == {"nov-mules", "dec-dormant"}
    assert by_name["dec-dormant"]["figures"]["connect_rate"] == pytest.approx(2 / 5)
    assert by_name["nov-mules"]["id"] == personas
    assert by_name["nov-mules"]["queue"]["done"] == 10
    assert by_name["dec-dormant"]["recent"] == {
        "calls": 5, "failed": 1, "refused": 1, "connected": 2, "failure_rate": 0.2,
        "refusal_rate": 0.2, "connect_rate": 0.4,
    }  # fmt: skip
    assert data["failure_reasons"][0]["count"] == 1
    # One campaign only: the same numbers as its row in the overview.
    one = get_monitor(app_client, "dec-dormant", days=0)
    assert one["overall"]["figures"] == by_name["dec-dormant"]["figures"]
    assert [c["name"] for c in one["campaigns"]] == ["dec-dormant"]
    # The page shows them.
    page = app_client.get("/monitor?days=0")
    assert page.status_code == 200
    assert f"{want['connect_rate'] * 100:.1f}%" in page.text
    assert "dec-dormant" in page.text and "1 个租约已过期" in page.text  # Chinese by default
    english = app_client.get("/monitor?days=0&lang=en")
    assert english.status_code == 200 and "1 lease expired" in english.text
    assert '<html lang="en">' in english.text and '<html lang="zh-CN">' in page.text


def test_figures_count_the_calls_of_the_period_and_queues_count_everything(
    app_client: TestClient, engine: Engine
) -> None:
    c = add_campaign(engine, "period")
    add_calls(engine, c, ["failed"] * 3, start=NOW - dt.timedelta(days=10))
    add_calls(engine, c, ["completed"] * 4, start=NOW - dt.timedelta(days=3))
    add_calls(engine, c, ["refused"] * 2, start=NOW - dt.timedelta(hours=2))
    login(app_client, "supervisor")
    week = get_monitor(app_client)  # the default period: 7 days
    assert week["since"].startswith("2026-11-24T09:00")
    assert week["overall"]["figures"]["outcomes"] == {"completed": 4, "refused": 2}
    assert week["overall"]["figures"]["failures"] == 0 and week["failure_reasons"] == []
    assert week["campaigns"][0]["recent"]["calls"] == 6
    assert week["overall"]["queue"]["done"] == 9  # work items: all of them, whatever the period
    day = get_monitor(app_client, days=1)
    assert day["overall"]["figures"]["outcomes"] == {"refused": 2}
    ever = get_monitor(app_client, days=0)
    assert ever["overall"]["figures"]["outcomes"] == {"completed": 4, "failed": 3, "refused": 2}
    assert ever["campaigns"][0]["recent"]["failed"] == 3
    assert app_client.get("/api/v1/monitor", params={"days": -1}).status_code == 422
    page = app_client.get("/monitor", params={"days": 1})
    assert '<option value="1" selected>' in page.text.replace("  ", " ")
    assert "2026-11-30 17:00（Asia/Shanghai）之后" in page.text  # web.timezone
    assert get_monitor(app_client, days=1)["hourly"][-1]["hour"].startswith("2026-12-01T09")
    # the chart's newest hour is labelled in local time, right-aligned (never clipped)
    assert re.search(r'text-anchor="end"[^>]*>17:00</text>', page.text), "live hour label"
    assert "最近 24 小时每小时通话（Asia/Shanghai）" in page.text


def col_id_mod(n: int) -> Any:
    return sa.text(f"id % {n} = 0")


def test_calls_per_hour_covers_the_last_24_hours(app_client: TestClient, engine: Engine) -> None:
    c = add_campaign(engine, "hours")
    add_calls(engine, c, ["completed"] * 3, start=NOW - dt.timedelta(minutes=30))
    add_calls(engine, c, ["failed"] * 2, start=NOW - dt.timedelta(hours=5, minutes=10))
    add_calls(engine, c, ["completed"], start=NOW - dt.timedelta(hours=30))  # too old
    login(app_client, "admin")
    hourly = get_monitor(app_client)["hourly"]
    assert len(hourly) == 24
    counts = {h["hour"][:13]: (h["calls"], h["failed"]) for h in hourly if h["calls"]}
    assert counts == {"2026-12-01T08": (3, 0), "2026-12-01T03": (2, 2)}
    assert hourly[-1]["hour"].startswith("2026-12-01T09")  # the current hour is last
    assert_get_changes_nothing(app_client, engine, c)


# -- alerts -----------------------------------------------------------------------------


def test_alerts_fire_at_the_thresholds(app_client: TestClient, engine: Engine) -> None:
    """Defaults: failure 10 %, refusal 30 %, over the last 200 calls, at least 20."""
    a = add_campaign(engine, "at-threshold")
    add_calls(engine, a, ["failed"] * 2 + ["refused"] * 6 + ["completed"] * 12)  # 10 %, 30 %
    b = add_campaign(engine, "just-below")
    add_calls(engine, b, ["failed"] * 1 + ["refused"] * 5 + ["completed"] * 14)  # 5 %, 25 %
    c = add_campaign(engine, "old-failures")
    add_calls(engine, c, ["failed"] * 50, start=NOW - dt.timedelta(hours=20))
    add_calls(engine, c, ["completed"] * 200, start=NOW - dt.timedelta(hours=10))
    login(app_client, "supervisor")
    data = get_monitor(app_client)
    fired = {(x["campaign"], x["kind"]) for x in data["alerts"]}
    assert ("at-threshold", "failure") in fired and ("at-threshold", "refusal") in fired
    assert not {n for n, _ in fired} & {"just-below", "old-failures"}
    by_name = {x["name"]: x for x in data["campaigns"]}
    assert by_name["old-failures"]["recent"]["calls"] == 200  # the window, not all 250
    assert by_name["old-failures"]["recent"]["failed"] == 0
    # Overall, the last 200 calls are mostly "old-failures"' completed ones: no alert.
    assert all(x["campaign"] is not None for x in data["alerts"])
    page = app_client.get("/monitor")
    assert (
        'role="alert"' in page.text and "任务 at-threshold：最近 20 通的失败率为 10%" in page.text
    )
    screen = app_client.get("/monitor/screen?lang=en")
    assert "campaign at-threshold: refusal rate 30% over the last 20 calls" in screen.text


def test_too_few_calls_raise_no_alert() -> None:
    t = MonitorThresholds()
    from bot.web.stats import WindowRates

    assert alerts_for("x", WindowRates(calls=19, failed=19), t) == []
    kinds = [a.kind for a in alerts_for("x", WindowRates(calls=20, failed=2, connected=18), t)]
    assert kinds == ["failure"]
    assert alerts_for("x", WindowRates(calls=200, failed=19, refused=59, connected=181), t) == []
    # the connect rate alerts below its floor (5 %), not at it
    assert alerts_for("x", WindowRates(calls=20, connected=1), t) == []
    (low,) = alerts_for("x", WindowRates(calls=20, connected=0), t)
    assert low.kind == "connect" and "below 5%" in low.message


def test_thresholds_come_from_the_settings_when_present() -> None:
    class Web:
        monitor = MonitorThresholds(failure_rate=0.5, window=50)

    class State:
        settings = type("S", (), {"web": Web()})()

    request: Any = type("R", (), {"app": type("A", (), {"state": State()})()})()
    assert thresholds_of(request).failure_rate == 0.5
    State.settings = type("S", (), {"web": object()})()
    assert thresholds_of(request) == MonitorThresholds()


def test_percentile_interpolation_matches_numpy() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    ranked = dict(enumerate(sorted(values)))
    for p in (0.5, 0.95):
        assert interpolate(ranked, len(values), p) == pytest.approx(np.percentile(values, p * 100))
    assert interpolate({}, 0, 0.5) is None


# -- pages ------------------------------------------------------------------------------


def test_charts_are_well_formed_and_labels_escaped(app_client: TestClient, engine: Engine) -> None:
    evil = 'x<script>alert("1")</script>&'
    c = add_campaign(engine, evil)
    add_calls(engine, c, ["completed", "failed", "refused"], start=NOW - dt.timedelta(hours=2))
    login(app_client, "admin")
    page = app_client.get("/monitor")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    charts = svgs(page.text)
    assert len(charts) >= 4
    texts = [
        "".join(t.itertext())
        for svg in charts
        for t in svg.iter("{http://www.w3.org/2000/svg}text")
    ]
    assert evil in texts  # escaped in the markup, intact as text
    # The big screen: large figures, reloads itself every 15 s, no navigation.
    add_calls(engine, add_campaign(engine, "wall"), ["completed", "no_answer"])
    r = app_client.get("/monitor/screen?campaign=wall")
    assert r.status_code == 200
    assert re.search(r'<meta http-equiv="refresh" content="15">', r.text)
    assert "<nav>" not in r.text and "退出" not in r.text
    assert 'data-k="connect_rate">50%<' in r.text and 'data-k="calls">2<' in r.text
    assert len(svgs(r.text)) == 2


def assert_get_changes_nothing(app_client: TestClient, engine: Engine, campaign_id: int) -> None:
    add_items(engine, campaign_id, [("in_progress", NOW - dt.timedelta(hours=1))])

    def snapshot() -> list[Any]:
        with engine.connect() as conn:
            return [
                conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("call_attempt", "campaign_account", "audit_event", "outbox")
            ] + list(
                conn.execute(sa.text("SELECT state, lease_owner FROM campaign_account ORDER BY id"))
            )

    before = snapshot()
    for path in ("/monitor", "/monitor/screen", "/api/v1/monitor", "/monitor?campaign=hours"):
        assert app_client.get(path).status_code == 200
    assert snapshot() == before


def test_a_collapsing_connect_rate_alerts(app_client: TestClient, engine: Engine) -> None:
    dead = add_campaign(engine, "dead-trunk")
    add_calls(engine, dead, ["no_answer"] * 15 + ["busy"] * 4 + ["failed"] * 0 + ["voicemail"])
    fine = add_campaign(engine, "answering")
    add_calls(engine, fine, ["no_answer"] * 10 + ["completed"] * 10)
    login(app_client, "supervisor")
    fired = {(x["campaign"], x["kind"]) for x in get_monitor(app_client)["alerts"]}
    assert ("dead-trunk", "connect") not in fired  # voicemail answered: 1 of 20 is 5 %
    add_calls(engine, dead, ["no_answer"], start=NOW - dt.timedelta(minutes=1))
    fired = {(x["campaign"], x["kind"]) for x in get_monitor(app_client)["alerts"]}
    assert ("dead-trunk", "connect") in fired and not {k for c, k in fired if c == "answering"}


def queue_items(engine: Engine, campaign_id: int, n: int, due: dt.datetime) -> None:
    with Session(engine) as s:
        for _ in range(n):
            acc = AccountRow(
                account_id=f"62{next(SEQ):010d}", name="王五", phone="13900000000",
                phone_e164="+8613900000000", scenario="dormant", model_score=0.4,
                timezone="UTC",
            )  # fmt: skip
            s.add(acc)
            s.flush()
            s.add(
                CampaignAccountRow(
                    campaign_id=campaign_id, account_pk=acc.id or 0, state="queued",
                    next_attempt_at=due,
                )
            )  # fmt: skip
        s.commit()


def open_all_day(engine: Engine, campaign_id: int) -> None:
    with Session(engine) as s:
        c = s.get(CampaignRow, campaign_id)
        assert c is not None
        c.window_start, c.window_end, c.weekdays = "00:00", "24:00", [1, 2, 3, 4, 5, 6, 7]
        s.add(c)
        s.commit()


def test_a_stalled_campaign_alerts(app_client: TestClient, engine: Engine) -> None:
    """Work claimable for the last 30 minutes and no call started in them: stalled. Work
    that only just became due, a campaign whose calls go on, and a paused one: not."""
    stalled = add_campaign(engine, "nobody-dials")
    queue_items(engine, stalled, 3, NOW - dt.timedelta(hours=1))
    add_calls(engine, stalled, ["completed"], start=NOW - dt.timedelta(hours=2))
    fresh = add_campaign(engine, "just-due")
    queue_items(engine, fresh, 3, NOW - dt.timedelta(minutes=5))
    going = add_campaign(engine, "dialling")
    queue_items(engine, going, 3, NOW - dt.timedelta(hours=1))
    add_calls(engine, going, ["completed"], start=NOW - dt.timedelta(minutes=2))
    paused = add_campaign(engine, "paused", state="paused")
    queue_items(engine, paused, 3, NOW - dt.timedelta(hours=1))
    for c in (stalled, fresh, going, paused):
        open_all_day(engine, c)
    login(app_client, "supervisor")
    data = get_monitor(app_client)
    stalls = [x for x in data["alerts"] if x["kind"] == "stalled"]
    assert [x["campaign"] for x in stalls] == ["nobody-dials"]
    assert "3 calls waiting for 30 min and none started" in stalls[0]["message"]
    page = app_client.get("/monitor")
    assert "任务 nobody-dials：3 通待呼已等待 30 分钟" in page.text


def test_tiles_are_coloured_as_the_alerts_judge(app_client: TestClient, engine: Engine) -> None:
    c = add_campaign(engine, "levels")
    # 20 calls: failure 10 % (at the limit: bad), refusal 25 % (within a fifth: warn),
    # connect 80 % (ok)
    add_calls(engine, c, ["failed"] * 2 + ["no_answer"] * 2 + ["refused"] * 5 + ["completed"] * 11)
    login(app_client, "supervisor")
    page = app_client.get("/monitor").text
    levels = dict(re.findall(r'data-level="(\w+)" data-k="(\w+)"', page))
    assert {v: k for k, v in levels.items()} == {
        "failure": "bad", "refusal": "warn", "connect": "ok"
    }  # fmt: skip
    screen = app_client.get("/monitor/screen").text
    assert 'class="big level-bad"><b data-k="failure_rate">' in screen
