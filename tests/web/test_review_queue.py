"""The review queue's filters, order and SLA column: high band first by default, then
suspicious before sampled, then oldest; filters by campaign, band, reason and branch
narrow both the list and its count; bad filter values are refused (422), never a 500."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.store.models import CampaignAccountRow, ReviewItemRow
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
    assert 'name="band"' in page.text and "highest score first" in page.text
    assert page.text.count('action="/review/') - page.text.count("/release") == len(high)


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
