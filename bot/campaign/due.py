"""How much campaign work is queued, how much of it is due now, and when the next item
becomes due: the numbers behind the worker's status line and ``--until-idle``.

"Due" means what :func:`bot.campaign.queue.claim` would take: a queued item of a
running campaign whose ``next_attempt_at`` has passed *and* whose callee's calling
window is open. An item due in closed calling hours is really due when the window next
opens (claim pushes it there), so the next due time is
``window.next_open(max(next_attempt_at, now), timezone)``. That is monotonic in
``next_attempt_at``, so one grouped query (per campaign and callee timezone: the earliest
``next_attempt_at``) gives the exact answer without reading every item.

Concurrency caps and the do-not-call list are left out: a capped item waits only for
calls that are live (and ``in_progress`` counts those), and a do-not-call item is
cancelled the moment it is claimed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from bot.campaign.schedule import CallingWindow
from bot.store.db import session_scope
from bot.store.models import AccountRow, CampaignAccountRow, CampaignRow, utcnow


@dataclass(frozen=True)
class QueueView:
    #: Items queued in running campaigns, due now or later.
    queued: int = 0
    #: Of those, the ones claim() would take now (due, calling window open).
    due_now: int = 0
    #: When the first queued item becomes claimable (``now`` if some are due now);
    #: None when nothing is queued or no queued item's window ever opens.
    next_due: dt.datetime | None = None
    #: Items in progress (a live call, this worker's or another's) in running campaigns.
    in_progress: int = 0


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _running(session: Session) -> dict[int, tuple[CampaignRow, CallingWindow]]:
    return {
        c.id: (c, CallingWindow.from_campaign(c.window_start, c.window_end, c.weekdays, c.holidays))
        for c in session.exec(select(CampaignRow).where(CampaignRow.state == "running"))
        if c.id is not None
    }


def _queued_groups(
    session: Session, campaign_ids: list[int], due_by: dt.datetime
) -> list[tuple[int, str, int, dt.datetime, int]]:
    """Queued items per (campaign, callee timezone): how many, the earliest
    ``next_attempt_at``, and how many have it at or before ``due_by``."""
    due = sa.case((col(CampaignAccountRow.next_attempt_at) <= due_by, 1), else_=0)
    rows = session.execute(
        sa.select(
            col(CampaignAccountRow.campaign_id),
            col(AccountRow.timezone),
            func.count(),
            func.min(col(CampaignAccountRow.next_attempt_at)),
            func.sum(due),
        )
        .join(AccountRow, col(AccountRow.id) == CampaignAccountRow.account_pk)
        .where(
            col(CampaignAccountRow.state) == "queued",
            col(CampaignAccountRow.campaign_id).in_(campaign_ids),
        )
        .group_by(col(CampaignAccountRow.campaign_id), col(AccountRow.timezone))
    ).all()
    return [(cid, tz, int(n), _aware(earliest), int(d or 0)) for cid, tz, n, earliest, d in rows]


def queue_view(engine: Engine, *, now: dt.datetime | None = None) -> QueueView:
    """The queue of running campaigns as ``claim(now=now)`` sees it."""
    now = now or utcnow()
    with session_scope(engine) as session:
        campaigns = _running(session)
        if not campaigns:
            return QueueView()
        groups = _queued_groups(session, list(campaigns), now)
        in_progress = session.exec(
            select(func.count())
            .select_from(CampaignAccountRow)
            .where(
                CampaignAccountRow.state == "in_progress",
                col(CampaignAccountRow.campaign_id).in_(list(campaigns)),
            )
        ).one()
    queued = due_now = 0
    next_due: dt.datetime | None = None
    for campaign_id, tz, n, earliest, n_due in groups:
        queued += n
        window = campaigns[campaign_id][1]
        try:
            opens = window.next_open(max(earliest, now), tz)
        except ValueError:  # a window that never opens: never due
            continue
        if window.is_open(now, tz):
            due_now += n_due
        next_due = opens if next_due is None else min(next_due, opens)
    return QueueView(queued, due_now, next_due, int(in_progress))


def claimable_throughout(session: Session, now: dt.datetime, span: dt.timedelta) -> dict[int, int]:
    """Per running campaign: the items claim() could have taken at every moment of the
    last ``span`` (due by ``now - span``, the callee's window open then and now). Work
    that waited that long while no call started means no worker is taking it: the
    monitor's "stalled" alert. Items that only just became due, or whose window just
    opened, do not count, so a morning start is no alarm."""
    campaigns = _running(session)
    if not campaigns:
        return {}
    then = now - span
    out: dict[int, int] = {}
    for campaign_id, tz, _n, _earliest, n_waiting in _queued_groups(session, list(campaigns), then):
        window = campaigns[campaign_id][1]
        if n_waiting and window.is_open(now, tz) and window.is_open(then, tz):
            out[campaign_id] = out.get(campaign_id, 0) + n_waiting
    return out
