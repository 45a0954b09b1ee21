"""Campaign life cycle (start, pause, resume, cancel) and status figures."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.core.vocab import NOT_CONNECTED
from bot.store.db import session_scope
from bot.store.models import CallRow, CampaignAccountRow, CampaignRow, utcnow

#: Allowed transitions: command -> (from states, to state).
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"draft", "paused", "completed"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "cancel": (frozenset({"draft", "running", "paused"}), "cancelled"),
}


class CampaignError(ValueError):
    pass


def find(session: Session, name: str) -> CampaignRow:
    """Campaign ``name``, or :class:`CampaignError`."""
    campaign = session.exec(select(CampaignRow).where(CampaignRow.name == name)).first()
    if campaign is None or campaign.id is None:
        raise CampaignError(f"no campaign named '{name}'")
    return campaign


def create(session: Session, campaign: CampaignRow) -> CampaignRow:
    """Add a new campaign (a ``draft``) in the caller's transaction; CampaignError when
    the name is taken. Accounts are loaded by :func:`bot.campaign.importer.import_file`
    (which also creates a campaign it does not find, with the model's defaults)."""
    taken = f"a campaign named '{campaign.name}' already exists"
    if session.exec(select(CampaignRow.id).where(CampaignRow.name == campaign.name)).first():
        raise CampaignError(taken)
    campaign.state = "draft"
    session.add(campaign)
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:  # created meanwhile: the caller must roll back
        raise CampaignError(taken) from exc
    return campaign


def transition(engine: Engine, name: str, command: str) -> str:
    """Apply ``command`` to campaign ``name``; returns the new state (see :func:`apply`)."""
    with session_scope(engine) as session:
        return apply(session, find(session, name), command)


def apply(session: Session, campaign: CampaignRow, command: str) -> str:
    """Apply ``command`` to ``campaign`` in the caller's transaction; returns the new
    state. Cancelling also cancels every queued item (calls in progress finish and are
    stored)."""
    allowed, target = TRANSITIONS[command]
    if campaign.state not in allowed:
        raise CampaignError(
            f"cannot {command} campaign '{campaign.name}' in state {campaign.state}"
        )
    campaign.state = target
    if command == "start" and campaign.started_at is None:
        campaign.started_at = utcnow()
    if command == "cancel":
        campaign.finished_at = utcnow()
        session.execute(
            sa.update(CampaignAccountRow)
            .where(
                col(CampaignAccountRow.campaign_id) == campaign.id,
                col(CampaignAccountRow.state) == "queued",
            )
            .values(state="cancelled", updated_at=utcnow())
        )
    session.add(campaign)
    return target


@dataclass
class CampaignStatus:
    name: str
    state: str
    items: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    dispositions: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    connect_rate: float | None = None
    avg_duration_s: float | None = None


def _counts(session, column, campaign_id: int, *, final: bool = False) -> dict[str, int]:  # type: ignore[no-untyped-def]
    query = select(column, sa.func.count()).where(CampaignAccountRow.campaign_id == campaign_id)
    if final:
        query = query.where(column.is_not(None))
    return {k: n for k, n in session.exec(query.group_by(column)).all()}


def status(engine: Engine, name: str) -> CampaignStatus:
    with session_scope(engine) as session:
        return status_of(session, find(session, name))


def status_of(session: Session, campaign: CampaignRow) -> CampaignStatus:
    """Work items by state, outcomes, dispositions, connect rate and call length."""
    assert campaign.id is not None
    st = CampaignStatus(campaign.name, campaign.state)
    st.items = _counts(session, CampaignAccountRow.state, campaign.id)
    st.dispositions = _counts(
        session, CampaignAccountRow.final_disposition, campaign.id, final=True
    )
    calls = (
        select(CallRow.outcome, sa.func.count(), sa.func.avg(CallRow.duration_s))
        .join(CampaignAccountRow, col(CampaignAccountRow.id) == CallRow.campaign_account_id)
        .where(CampaignAccountRow.campaign_id == campaign.id, col(CallRow.outcome).is_not(None))
        .group_by(col(CallRow.outcome))
    )
    rows = session.exec(calls).all()
    st.outcomes = {str(o): n for o, n, _ in rows}
    st.calls = sum(st.outcomes.values())
    answered = sum(n for o, n, _ in rows if o not in NOT_CONNECTED)
    st.connect_rate = round(answered / st.calls, 4) if st.calls else None
    talked = [(n, avg) for o, n, avg in rows if avg is not None and o not in NOT_CONNECTED]
    weight = sum(n for n, _ in talked)
    st.avg_duration_s = round(sum(n * avg for n, avg in talked) / weight, 1) if weight else None
    return st
