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
from sqlmodel import col, func, select

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


def queue_view(engine: Engine, *, now: dt.datetime | None = None) -> QueueView:
    """The queue of running campaigns as ``claim(now=now)`` sees it."""
    now = now or utcnow()
    with session_scope(engine) as session:
        campaigns = {
            c.id: c for c in session.exec(select(CampaignRow).where(CampaignRow.state == "running"))
        }
        if not campaigns:
            return QueueView()
        running = col(CampaignAccountRow.campaign_id).in_(list(campaigns))
        due_raw = sa.case((col(CampaignAccountRow.next_attempt_at) <= now, 1), else_=0)
        groups = session.execute(
            sa.select(
                col(CampaignAccountRow.campaign_id),
                col(AccountRow.timezone),
                func.count(),
                func.min(col(CampaignAccountRow.next_attempt_at)),
                func.sum(due_raw),
            )
            .join(AccountRow, col(AccountRow.id) == CampaignAccountRow.account_pk)
            .where(col(CampaignAccountRow.state) == "queued", running)
            .group_by(col(CampaignAccountRow.campaign_id), col(AccountRow.timezone))
        ).all()
        in_progress = session.exec(
            select(func.count())
            .select_from(CampaignAccountRow)
            .where(CampaignAccountRow.state == "in_progress", running)
        ).one()
        windows = {
            cid: CallingWindow.from_campaign(c.window_start, c.window_end, c.weekdays, c.holidays)
            for cid, c in campaigns.items()
        }
    queued = due_now = 0
    next_due: dt.datetime | None = None
    for campaign_id, tz, n, earliest, n_due in groups:
        queued += int(n)
        window = windows[campaign_id]
        try:
            opens = window.next_open(max(_aware(earliest), now), tz)
        except ValueError:  # a window that never opens: never due
            continue
        if window.is_open(now, tz):
            due_now += int(n_due or 0)
        next_due = opens if next_due is None else min(next_due, opens)
    return QueueView(queued, due_now, next_due, int(in_progress))
