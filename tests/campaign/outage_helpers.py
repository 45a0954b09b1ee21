"""Shared parts of the worker's outage tests: a small campaign whose callees all answer,
and the check that every call of it was recorded exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import yaml
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from bot.campaign.worker import SimulatedGateway, Worker, WorkerStats
from bot.core.investigation import Investigator
from bot.runtime import build_investigator
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import (
    AccountRow,
    CallRow,
    CampaignAccountRow,
    DispositionRow,
    OutboxRow,
    RiskAssessmentRow,
    TurnRow,
)
from tests.campaign.factories import make_campaign
from tests.conftest import SHARED

#: The logger of :class:`bot.store.retry.Reconnector` (one warning per outage).
RETRY_LOG = "bot.store.retry"


def text_investigator() -> Investigator:
    """The real investigator without the intent model (fast enough for many calls)."""
    return build_investigator(Settings(intent_model_enabled=False))


def answers() -> dict[str, str | None]:
    persona = yaml.safe_load((SHARED / "personas" / "p02_lent_to_friend.yaml").read_text("utf-8"))
    return dict(persona["answers"])


def campaign(engine: Engine, name: str, n: int) -> SimulatedGateway:
    """``n`` accounts that all answer (one attempt each); the gateway that calls them."""
    make_campaign(engine, name, n=n, max_attempts=1, max_concurrency=n)
    with session_scope(engine) as s:
        account_ids = s.exec(select(AccountRow.account_id)).all()
    assert len(account_ids) == n
    return SimulatedGateway(dict.fromkeys(account_ids, answers()))


def outage_worker(
    engine: Engine,
    investigator: Investigator,
    gateway: SimulatedGateway,
    *,
    base_s: float,
    cap_s: float,
    **kw: Any,
) -> Worker:
    """A worker on the test clock (a Monday in calling hours) that retries quickly."""
    from bot.store.retry import Reconnector
    from tests.campaign.factories import MONDAY_10_LOCAL

    return Worker(
        engine,
        investigator,
        gateway,
        poll_s=0.01,
        clock=lambda: MONDAY_10_LOCAL,
        reconnector=Reconnector(base_s=base_s, cap_s=cap_s),
        **kw,
    )


def run_to_idle(worker: Worker, *, timeout_s: float = 600.0) -> WorkerStats:
    """``worker.run(until_idle=True)`` in a thread, so that a worker that never gets
    idle fails the test (it is stopped) instead of hanging it."""
    stop = threading.Event()
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(stats=worker.run(stop, until_idle=True)))
    thread.start()
    thread.join(timeout=timeout_s)
    finished = not thread.is_alive()
    stop.set()
    thread.join(timeout=60)
    assert finished and "stats" in result, "the worker did not finish"
    stats: WorkerStats = result["stats"]
    return stats


def assert_each_call_recorded_once(engine: Engine, n: int) -> list[CallRow]:
    with session_scope(engine) as s:
        items = s.exec(select(CampaignAccountRow)).all()
        assert len(items) == n and {i.state for i in items} == {"done"}
        calls = s.exec(select(CallRow)).all()
        # One attempt per account, none lost to lease recovery, none left open.
        assert Counter(c.campaign_account_id for c in calls) == {i.id: 1 for i in items}
        assert all(c.ended_at is not None and c.ended_by != "worker_lost" for c in calls)
        for model in (DispositionRow, RiskAssessmentRow):
            per_call = Counter(r.call_id for r in s.exec(select(model)).all())
            assert per_call == {c.id: 1 for c in calls}, model.__name__
        outbox = s.exec(select(OutboxRow)).all()
        assert len(outbox) == n and len({o.idempotency_key for o in outbox}) == n
        # Turns were written once per call, not once per try.
        turns = Counter(
            s.exec(select(TurnRow.call_id, func.count()).group_by(TurnRow.call_id)).all()
        )
        counts = {k[1] for k in turns}
        assert len(turns) == n and len(counts) == 1 and counts.pop() > 2
        return list(calls)
