"""The review queue's filters, order and SLA column: high band first by default, then
suspicious before sampled, then oldest; filters by campaign, band, reason and branch
narrow both the list and its count; bad filter values are refused (422), never a 500."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.store.models import CampaignAccountRow, ReviewItemRow, VerdictRow
from bot.web.review_service import REVIEW_SLA
from tests.campaign.factories import make_campaign
from tests.web.conftest import Clock, login
from tests.web.factories import populate

BAND_RANK = {"high": 0, "medium": 1}


def queue(client: TestClient, **params: str) -> list[dict[str, object]]:
    r = client.get("/api/v1/review", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total_open"] == len(body["open"])  # one page holds them all here
    return list(body["open"])


def split_campaign(engine: Engine, campaign_id: int, name: str) -> int:
    """A second campaign that takes over every other work item of ``campaign_id``."""
    other, _ = make_campaign(engine, name, n=1, state="done")
    with Session(engine) as s:
        rows = s.exec(
            select(CampaignAccountRow)
            .where(CampaignAccountRow.campaign_id == campaign_id)
            .order_by(col(CampaignAccountRow.id))
        ).all()
        for row in rows[::2]:
            row.campaign_id = other
            s.add(row)
        s.commit()
    return other


def test_priority_order_filters_and_sla(
    app_client: TestClient, engine: Engine, users: dict[str, int], clock: Clock
) -> None:
    first = populate(engine, "nov-mules")
    second = split_campaign(engine, first, "dec-mules")
    with Session(engine) as s:  # queued an hour ago, the first two days ago (past the SLA)
        rows = s.exec(select(ReviewItemRow).order_by(col(ReviewItemRow.id))).all()
        for n, row in enumerate(rows):
            row.created_at = clock.now - (2 * REVIEW_SLA if n == 0 else dt.timedelta(hours=1))
            s.add(row)
        s.commit()
        oldest_id = rows[0].id
    login(app_client, "reviewer")

    items = queue(app_client)
    assert len(items) >= 4 and {i["campaign"] for i in items} == {"nov-mules", "dec-mules"}
    keys = [(BAND_RANK.get(str(i["risk_band"]), 2), i["reason"] != "suspicious") for i in items]
    assert keys == sorted(keys), "high band first, then suspicious before sampled"
    assert items[0]["risk_band"] == "high"
    overdue = [i for i in items if i["overdue"]]
    assert [i["id"] for i in overdue] == [oldest_id]
    assert float(str(overdue[0]["age_hours"])) >= 48

    by_age = queue(app_client, sort="oldest")
    assert by_age[0]["id"] == oldest_id and {i["id"] for i in by_age} == {i["id"] for i in items}
    newest = queue(app_client, sort="newest")
    assert [i["id"] for i in newest] == sorted((i["id"] for i in newest), reverse=True)
    scores = [float(str(i["risk_score"] or -1)) for i in queue(app_client, sort="score")]
    assert scores == sorted(scores, reverse=True)

    mine = queue(app_client, campaign=str(first))
    assert mine and {i["campaign"] for i in mine} == {"nov-mules"}
    assert len(mine) + len(queue(app_client, campaign=str(second))) == len(items)
    high = queue(app_client, band="high")
    assert high and {i["risk_band"] for i in high} == {"high"}
    for reason in ("suspicious", "sample"):
        assert {i["reason"] for i in queue(app_client, reason=reason)} <= {reason}
    branch = next(str(i["branch"]) for i in items if i["branch"])
    assert {i["branch"] for i in queue(app_client, branch=branch)} == {branch}
    assert queue(app_client, branch="no-such-branch") == []

    page = app_client.get("/review", params={"band": "high", "sort": "score"})
    assert page.status_code == 200
    assert 'name="band"' in page.text and "风险分从高到低" in page.text
    claims = page.text.count('action="/review/') - page.text.count("/release")
    assert claims - page.text.count('action="/review/next') == len(high)


@pytest.mark.parametrize(
    "params",
    [{"band": "severe"}, {"sort": "random"}, {"reason": "x"}, {"campaign": "0"},
     {"campaign": str(2**63)}, {"branch": "b" * 61}],
)  # fmt: skip
def test_bad_filters_are_refused(
    app_client: TestClient, users: dict[str, int], params: dict[str, str]
) -> None:
    login(app_client, "reviewer")
    r = app_client.get("/api/v1/review", params=params)
    assert r.status_code == 422 and r.json()["problems"], r.text
    assert app_client.get("/review", params=params).status_code == 422


def test_next_item_follows_the_queue_order(
    app_client: TestClient, engine: Engine, users: dict[str, int]
) -> None:
    populate(engine)
    login(app_client, "reviewer")
    items = queue(app_client)
    from bot.web.review_service import next_open

    with Session(engine) as s:
        now = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        assert next_open(s, now, after=-1) == items[0]["id"]
        assert next_open(s, now, after=int(str(items[0]["id"]))) == items[1]["id"]


def test_the_sla_is_a_setting(engine: Engine, users: dict[str, int], clock: Clock) -> None:
    """``web.review_sla_hours``: with a 2-hour service level, items queued 3 hours ago are
    overdue and one queued an hour ago is not."""
    from bot.settings import Settings
    from bot.web.app import create_app
    from bot.web.config import WebSettings

    populate(engine, "sla")
    with Session(engine) as s:
        rows = s.exec(select(ReviewItemRow).order_by(col(ReviewItemRow.id))).all()
        for n, row in enumerate(rows):
            row.created_at = clock.now - dt.timedelta(hours=1 if n == 0 else 3)
            s.add(row)
        s.commit()
        fresh = rows[0].id
    app = create_app(Settings(web=WebSettings(review_sla_hours=2)), engine, clock=clock)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        login(client, "reviewer")
        items = queue(client)
    assert len(items) >= 2
    assert {i["id"] for i in items if not i["overdue"]} == {fresh}


# -- the review desk: submit and next, skip, today's counter, the queue's age -----------


def held_by(engine: Engine, item_id: int) -> tuple[str, int | None]:
    with Session(engine) as s:
        item = s.get(ReviewItemRow, item_id)
        assert item is not None
        return item.state, item.claimed_by


def test_submit_and_next_opens_the_next_item_claimed_with_the_filters_kept(
    app_client: TestClient, engine: Engine, users: dict[str, int]
) -> None:
    """Start reviewing, then each verdict (the form's default) redirects to the next item
    in the filtered queue's order, already claimed for this reviewer; an item another
    reviewer took meanwhile is passed over; the last verdict lands on the queue."""
    campaign = populate(engine, "desk")
    split_campaign(engine, campaign, "other-desk")  # the filter must exclude these
    token = login(app_client, "reviewer")
    filters = {"campaign": str(campaign), "sort": "oldest"}
    qs = f"campaign={campaign}&sort=oldest"
    order = [int(str(i["id"])) for i in queue(app_client, **filters)]
    assert len(order) >= 3 and len(order) < len(queue(app_client))

    r = app_client.post(f"/review/next?{qs}", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/review/{order[0]}?{qs}"
    assert held_by(engine, order[0]) == ("claimed", users["reviewer"])
    page = app_client.get(r.headers["location"])
    assert page.status_code == 200
    assert f'action="/review/{order[0]}/verdict?{qs.replace("&", "&amp;")}"' in page.text
    assert "提交并下一条" in page.text and 'id="keys-help"' in page.text

    other = TestClient(app_client.app, base_url="https://testserver", follow_redirects=False)
    with other:  # another reviewer takes what would have been next
        theirs = login(other, "supervisor")
        taken = other.post(f"/api/v1/review/{order[1]}/claim", headers={"X-CSRF-Token": theirs})
        assert taken.status_code == 200

    r = app_client.post(
        f"/review/{order[0]}/verdict?{qs}", data={"decision": "agree", "csrf_token": token}
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/review/{order[2]}?{qs}&done={order[0]}"
    assert held_by(engine, order[0])[0] == "done"
    assert held_by(engine, order[2]) == ("claimed", users["reviewer"])
    assert held_by(engine, order[1]) == ("claimed", users["supervisor"])
    assert f"条目 {order[0]} 的复核结论已记录" in app_client.get(r.headers["location"]).text

    for n, item in enumerate(order[2:], start=2):
        r = app_client.post(
            f"/review/{item}/verdict?{qs}",
            data={"decision": "agree", "then": "next", "csrf_token": token},
        )
        following = order[n + 1] if n + 1 < len(order) else None
        want = f"/review/{following}?{qs}" if following else f"/review?{qs}&empty=1"
        assert r.headers["location"] == f"{want}&done={item}"
    assert {held_by(engine, i)[0] for i in order if i != order[1]} == {"done"}
    assert "没有符合筛选条件的待复核条目了" in app_client.get(r.headers["location"]).text
    assert (
        app_client.post(f"/review/next?{qs}", data={"csrf_token": token}).headers["location"]
        == f"/review?{qs}&empty=1"
    )


def test_skip_gives_the_item_back_and_claims_the_next(
    app_client: TestClient, engine: Engine, users: dict[str, int]
) -> None:
    populate(engine)
    token = login(app_client, "reviewer")
    high = [int(str(i["id"])) for i in queue(app_client, band="high")]
    assert len(high) >= 2
    first = app_client.post("/review/next?band=high", data={"csrf_token": token})
    assert first.headers["location"] == f"/review/{high[0]}?band=high"
    r = app_client.post(f"/review/{high[0]}/skip?band=high", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/review/{high[1]}?band=high"
    assert held_by(engine, high[0]) == ("open", None)
    assert held_by(engine, high[1]) == ("claimed", users["reviewer"])
    assert app_client.post(f"/review/{high[1]}/skip", data={}).status_code == 403  # CSRF
    api = app_client.post("/api/v1/review/next", headers={"X-CSRF-Token": token})
    assert api.status_code == 200 and api.json()["id"] == high[1]  # the one you hold first


def test_todays_counter_counts_only_this_reviewers_verdicts_since_the_teams_midnight(
    app_client: TestClient, engine: Engine, users: dict[str, int], clock: Clock
) -> None:
    """Today is the team's day in web.timezone (Asia/Shanghai, UTC+8, by default): the
    clock says 2026-12-01 09:00 UTC, 17:00 in Shanghai, so the day began at 2026-11-30
    16:00 UTC."""
    populate(engine)
    with Session(engine) as s:  # the oldest open item was queued 30 hours ago
        rows = s.exec(select(ReviewItemRow).order_by(col(ReviewItemRow.id))).all()
        for n, row in enumerate(rows):
            row.created_at = clock.now - dt.timedelta(hours=30 if n == 1 else 2)
            s.add(row)
        s.commit()
        ids = [r.id or 0 for r in rows]
    mine = login(app_client, "reviewer")
    other = TestClient(app_client.app, base_url="https://testserver", follow_redirects=False)
    with other:
        theirs = login(other, "supervisor")
        for client, token, item in [(app_client, mine, ids[0]), (app_client, mine, ids[2]),
                                    (other, theirs, ids[3])]:  # fmt: skip
            h = {"X-CSRF-Token": token}
            assert client.post(f"/api/v1/review/{item}/claim", headers=h).status_code == 200
            v = client.post(f"/api/v1/review/{item}/verdict", json={"agree": True}, headers=h)
            assert v.status_code == 200
        assert other.get("/api/v1/review").json()["desk"]["done_today"] == 1
    team_midnight = dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)  # 00:00 in Shanghai
    with Session(engine) as s:  # 23:59 yesterday in Shanghai: not today; 01:00 today: counted
        for at in (team_midnight - dt.timedelta(minutes=1), team_midnight + dt.timedelta(hours=1)):
            s.add(VerdictRow(review_item_id=ids[0], reviewer_id=users["reviewer"], agree=True,
                             created_at=at))  # fmt: skip
        s.commit()
    stats = app_client.get("/api/v1/review").json()["desk"]
    assert stats["done_today"] == 3  # from UTC midnight it would be 2
    assert stats["day_starts"] == "2026-12-01T00:00:00+08:00"
    assert stats["open_total"] == len(ids) - 3
    assert stats["queue_age_hours"] == 30.0 and stats["overdue"] is True
    assert stats["oldest_open_at"].startswith("2026-11-30T03:00:00")
    page = app_client.get("/review").text
    assert '今日已复核： <strong id="done-today">3</strong>' in page
    assert "（自 Asia/Shanghai 时间 00:00 起）" in page
    assert '<strong id="queue-age" class="overdue">30.0 小时</strong>' in page
    item_page = app_client.get(f"/review/{ids[4]}").text
    assert '<strong id="done-today">3</strong>' in item_page
    english = app_client.get("/review?lang=en").text
    assert 'Reviewed today: <strong id="done-today">3</strong>' in english
    assert '<strong id="queue-age" class="overdue">30.0 h</strong>' in english
    clock.advance(hours=7, minutes=1)  # 00:01 in Shanghai (16:01 UTC): a new day
    login(app_client, "reviewer")
    assert app_client.get("/api/v1/review").json()["desk"]["done_today"] == 0


def test_player_turns_start_where_the_recording_has_them() -> None:
    """A bot turn starts at its ``at_s``; a callee turn's ``at_s`` is when the answer was
    heard in full, so it starts earlier by an estimate from its length, never before
    the previous turn; each ends where the next starts."""
    from bot.store.models import TurnRow
    from bot.web.review_service import player_turns

    def turn(idx: int, role: str, at: float, text: str) -> TurnRow:
        return TurnRow(call_id=1, idx=idx, role=role, at_s=at, node_id="n", topic="t",
                       text=text, event="speech")  # fmt: skip

    spans = player_turns(
        [turn(0, "bot", 0.0, "您好"), turn(1, "callee", 10.0, "对，我是李娜。"),
         turn(2, "bot", 10.0, "好的"), turn(3, "callee", 11.0, "这张卡我借给朋友用了")],
        duration_s=12.5,
    )  # fmt: skip
    assert [(p.start_s, p.end_s) for p in spans] == [
        (0.0, 7.55),
        (7.55, 10.0),
        (10.0, 10.0),
        (10.0, 12.5),
    ]
