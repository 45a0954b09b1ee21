"""What is waiting, read cheaply for metrics scrapes: campaign queues, the outbox and the
review desk (each a grouped ``COUNT``/``MIN`` on an indexed state column), and how often
reviewers agree with the bot (verdicts of a recent window, on the verdict time index)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.store.db import session_scope
from bot.store.models import (
    CampaignAccountRow,
    CampaignRow,
    OutboxRow,
    ReviewItemRow,
    VerdictRow,
)


@dataclass(frozen=True)
class Backlog:
    #: Items per state (only the states asked about; absent = 0).
    counts: dict[str, int]
    #: When the oldest item of the state that ages (pending, open) was created.
    oldest: dt.datetime | None


def running_queues(engine: Engine, now: dt.datetime) -> list[tuple[str, int, dt.datetime | None]]:
    """Each running campaign: (name, queued items due by ``now``, the earliest due time
    among them). A running campaign with nothing due is listed with 0 and None."""
    due = (
        sa.and_(
            col(CampaignAccountRow.campaign_id) == CampaignRow.id,
            col(CampaignAccountRow.state) == "queued",
            col(CampaignAccountRow.next_attempt_at) <= now,
        )
    )  # fmt: skip
    with session_scope(engine) as session:
        rows = session.exec(
            select(
                CampaignRow.name,
                sa.func.count(col(CampaignAccountRow.id)),
                sa.func.min(col(CampaignAccountRow.next_attempt_at)),
            )
            .select_from(CampaignRow)
            .outerjoin(CampaignAccountRow, due)
            .where(col(CampaignRow.state) == "running")
            .group_by(col(CampaignRow.name))
        ).all()
        return [(name, int(n), oldest) for name, n, oldest in rows]


def _states(engine: Engine, table: type, states: tuple[str, ...], ages: str) -> Backlog:
    state, created = table.state, table.created_at  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        rows = session.exec(
            select(state, sa.func.count(), sa.func.min(created))
            .where(col(state).in_(states))
            .group_by(col(state))
        ).all()
    return Backlog(
        {s: int(n) for s, n, _ in rows}, next((o for s, _, o in rows if s == ages), None)
    )


def outbox_backlog(engine: Engine) -> Backlog:
    """Pending and dead outbox items; ``oldest``: the oldest pending one."""
    return _states(engine, OutboxRow, ("pending", "dead"), "pending")


def review_backlog(engine: Engine) -> Backlog:
    """Open and claimed review items; ``oldest``: the oldest open one."""
    return _states(engine, ReviewItemRow, ("open", "claimed"), "open")


def recent_verdicts(engine: Engine, since: dt.datetime) -> dict[tuple[str, bool], int]:
    """Verdicts given since ``since``, by the item's reason for review (suspicious,
    sample) and whether the reviewer agreed with the bot."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(ReviewItemRow.reason, VerdictRow.agree, sa.func.count())
            .select_from(VerdictRow)
            .join(ReviewItemRow, col(ReviewItemRow.id) == VerdictRow.review_item_id)
            .where(col(VerdictRow.created_at) >= since)
            .group_by(col(ReviewItemRow.reason), col(VerdictRow.agree))
        ).all()
    return {(reason, bool(agree)): int(n) for reason, agree, n in rows}
