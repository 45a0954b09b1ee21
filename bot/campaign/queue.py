"""The dial queue: atomic claims with leases, lease renewal and recovery.

Several workers (processes or machines) share one database. A work item is claimed with
a compare-and-set update (``... WHERE state = 'queued'``), on PostgreSQL after selecting
candidates ``FOR UPDATE SKIP LOCKED`` so that workers do not queue behind each other.
A partial unique index allows one ``in_progress`` item per account across campaigns:
never two live calls to one account. A claim carries a lease; a worker that dies
(even by SIGKILL) stops renewing it, and :func:`recover_expired` puts the item back.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from bot.campaign.schedule import CallingWindow
from bot.store.db import session_scope
from bot.store.models import (
    AccountRow,
    CallRow,
    CampaignAccountRow,
    CampaignRow,
    DispositionRow,
    DncEntryRow,
    utcnow,
)

#: A crashed worker's attempt is not held against the account, but an item whose calls
#: keep killing workers stops being retried after this many losses.
MAX_LOST_CALLS = 2


@dataclass(frozen=True)
class Claim:
    item_id: int
    campaign_id: int
    account_pk: int
    attempt_no: int
    max_attempts: int
    worker_id: str
    call_id: int


def _windows(session: Session) -> dict[int, tuple[CampaignRow, CallingWindow]]:
    rows = session.exec(select(CampaignRow).where(CampaignRow.state == "running")).all()
    return {
        c.id: (c, CallingWindow.from_campaign(c.window_start, c.window_end, c.weekdays, c.holidays))
        for c in rows
        if c.id is not None
    }


def _live_counts(session: Session) -> Counter[int]:
    rows = session.exec(
        select(CampaignAccountRow.campaign_id, func.count())
        .where(CampaignAccountRow.state == "in_progress")
        .group_by(col(CampaignAccountRow.campaign_id))
    ).all()
    return Counter({cid: n for cid, n in rows})


def claim(
    engine: Engine,
    worker_id: str,
    *,
    limit: int,
    now: dt.datetime | None = None,
    lease_s: float = 120.0,
    global_cap: int | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` due items of running campaigns, inside their calling
    windows and concurrency caps. Items due outside their window are pushed to the
    window's next opening; items whose number joined the do-not-call list are cancelled."""
    now = now or utcnow()
    claims: list[Claim] = []
    with session_scope(engine) as session:
        campaigns = _windows(session)
        if not campaigns or limit <= 0:
            return []
        live = _live_counts(session)
        if global_cap is not None:
            limit = min(limit, global_cap - sum(live.values()))
        query = (
            select(CampaignAccountRow, AccountRow.timezone, AccountRow.phone_e164)
            .join(AccountRow, col(AccountRow.id) == CampaignAccountRow.account_pk)
            .where(
                CampaignAccountRow.state == "queued",
                col(CampaignAccountRow.next_attempt_at) <= now,
                col(CampaignAccountRow.campaign_id).in_(list(campaigns)),
            )
            .order_by(col(CampaignAccountRow.next_attempt_at), col(CampaignAccountRow.id))
            .limit(max(limit, 0) * 4 + 8)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=CampaignAccountRow)
        candidates = session.exec(query).all()
        dnc = _dnc_numbers(session, {phone for _, _, phone in candidates})
        for item, tz, phone in candidates:
            if len(claims) >= limit:
                break
            campaign, window = campaigns[item.campaign_id]
            if phone in dnc:
                _set(session, item, state="cancelled", last_outcome="dnc", now=now)
                continue
            opens = window.next_open(now, tz)
            if opens > now:
                _set(session, item, next_attempt_at=opens, now=now)
                continue
            if live[item.campaign_id] >= campaign.max_concurrency:
                continue
            got = _take(session, item, worker_id, now, lease_s, campaign.max_attempts)
            if got is not None:
                claims.append(got)
                live[item.campaign_id] += 1
    return claims


def _dnc_numbers(session: Session, phones: set[str]) -> set[str]:
    if not phones:
        return set()
    rows = session.exec(
        select(DncEntryRow.phone_e164).where(col(DncEntryRow.phone_e164).in_(phones))
    )
    return set(rows.all())


def _set(session: Session, item: CampaignAccountRow, *, now: dt.datetime, **values: object) -> None:
    session.execute(
        sa.update(CampaignAccountRow)
        .where(col(CampaignAccountRow.id) == item.id, col(CampaignAccountRow.state) == "queued")
        .values(updated_at=now, **values)
    )


def _take(
    session: Session,
    item: CampaignAccountRow,
    worker_id: str,
    now: dt.datetime,
    lease_s: float,
    max_attempts: int,
) -> Claim | None:
    """Compare-and-set one item to in_progress; None if someone else got it first or the
    account already has a live call in another campaign."""
    attempt_no = item.attempts + 1  # read before the update refreshes the object
    savepoint = session.begin_nested()
    try:
        result = session.execute(
            sa.update(CampaignAccountRow)
            .where(col(CampaignAccountRow.id) == item.id, col(CampaignAccountRow.state) == "queued")
            .values(
                state="in_progress",
                lease_owner=worker_id,
                lease_expires_at=now + dt.timedelta(seconds=lease_s),
                attempts=CampaignAccountRow.attempts + 1,
                updated_at=now,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            savepoint.rollback()
            return None
        call = CallRow(
            campaign_account_id=item.id,
            account_pk=item.account_pk,
            attempt_no=attempt_no,
            worker_id=worker_id,
            started_at=now,
        )
        session.add(call)
        session.flush()
        savepoint.commit()
    except sa.exc.IntegrityError:  # a live call to this account exists elsewhere
        savepoint.rollback()
        return None
    assert item.id is not None and call.id is not None
    return Claim(
        item.id, item.campaign_id, item.account_pk, attempt_no, max_attempts, worker_id, call.id
    )


def update_if_owned(session: Session, claim: Claim, **values: object) -> bool:
    """Update the claimed item only while ``claim`` still holds it (in progress, same
    lease owner); False when the lease was lost to recovery."""
    result = session.execute(
        sa.update(CampaignAccountRow)
        .where(
            col(CampaignAccountRow.id) == claim.item_id,
            col(CampaignAccountRow.state) == "in_progress",
            col(CampaignAccountRow.lease_owner) == claim.worker_id,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def renew_lease(
    engine: Engine, claim: Claim, *, lease_s: float = 120.0, now: dt.datetime | None = None
) -> bool:
    """Extend a live claim's lease; False if the claim was lost (recovered elsewhere)."""
    now = now or utcnow()
    with session_scope(engine) as session:
        return update_if_owned(
            session, claim, lease_expires_at=now + dt.timedelta(seconds=lease_s), updated_at=now
        )


def _hand_to_people(session: Session, item: CampaignAccountRow, now: dt.datetime) -> None:
    """An item given up after repeated worker loss still gets a disposition, queued for
    the bank like any other (in the same transaction)."""
    from bot.delivery.payload import enqueue

    call = session.exec(
        select(CallRow)
        .where(CallRow.campaign_account_id == item.id)
        .order_by(col(CallRow.started_at).desc())
    ).first()
    account = session.get(AccountRow, item.account_pk)
    if call is None or account is None:
        return
    call.disposition = "manual_investigation"
    session.add(call)
    disposition = DispositionRow(
        call_id=call.id,  # type: ignore[arg-type]
        account_pk=item.account_pk,
        disposition="manual_investigation",
        situation="unreached_exhausted",
        created_at=now,
    )
    session.add(disposition)
    session.flush()
    enqueue(session, disposition, call, account)


def recover_expired(engine: Engine, *, now: dt.datetime | None = None) -> int:
    """Put items whose lease expired back in the queue (their worker died); the lost
    call is recorded as ``failed`` / ``worker_lost``. Returns how many were recovered."""
    now = now or utcnow()
    recovered = 0
    with session_scope(engine) as session:
        expired = session.exec(
            select(CampaignAccountRow)
            .where(
                CampaignAccountRow.state == "in_progress",
                col(CampaignAccountRow.lease_expires_at) < now,
            )
            .with_for_update(skip_locked=True)
        ).all()
        for item in expired:
            session.execute(
                sa.update(CallRow)
                .where(col(CallRow.campaign_account_id) == item.id, col(CallRow.ended_at).is_(None))
                .values(outcome="failed", ended_by="worker_lost", ended_at=now)
            )
            lost = session.exec(
                select(func.count())
                .select_from(CallRow)
                .where(CallRow.campaign_account_id == item.id, CallRow.ended_by == "worker_lost")
            ).one()
            values: dict[str, object] = {
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if lost >= MAX_LOST_CALLS:
                values.update(
                    state="done", last_outcome="failed", final_disposition="manual_investigation"
                )
                _hand_to_people(session, item, now)
            else:
                values.update(
                    state="queued", next_attempt_at=now, attempts=max(item.attempts - 1, 0)
                )
            session.execute(
                sa.update(CampaignAccountRow)
                .where(
                    col(CampaignAccountRow.id) == item.id,
                    col(CampaignAccountRow.state) == "in_progress",
                )
                .values(**values)
            )
            recovered += 1
    return recovered
