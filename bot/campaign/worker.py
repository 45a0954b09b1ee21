"""``bot worker``: claims due calls, places them through a gateway, stores the results.

Run as many workers as the gateway and the machine allow, in separate processes or on
separate machines sharing one PostgreSQL: claims are atomic and leased (see
:mod:`bot.campaign.queue`). A call that raises is stored as ``failed``; the worker goes
on with the next one.

The worker outlives database outages (a dropped connection, a server restart): every
database step is one transaction, retried from the start with backoff while the
database is unreachable (:class:`bot.store.retry.Reconnector`). Storing a call's result
is retried only after checking that its first try did not commit, so a call is never
recorded twice; a claim whose lease ran out during a long outage is recovered by the
usual lease protocol.

The worker says what it is doing (:mod:`bot.campaign.progress`): every
``status_every_s`` a status line (calls/min, outcomes, connect rate, live calls, queue
depth, or "nothing due until HH:MM"), a loud warning when calls stop connecting, and,
with ``until_idle``, why it stops. It hands these to ``on_notice`` (the CLI prints them)
or, without one, to the log.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot import metrics
from bot.campaign import progress
from bot.campaign.due import QueueView, queue_view
from bot.campaign.queue import Claim, claim, recover_expired, renew_lease
from bot.campaign.recorder import LeaseLost, record_result, to_account
from bot.core.account import Account
from bot.core.investigation import CallResult, Investigator
from bot.core.vocab import Outcome
from bot.sim.callee import PersonaCallee
from bot.store.db import session_scope
from bot.store.models import AccountRow, CallRow, CampaignAccountRow, CampaignRow, OutboxRow, utcnow
from bot.store.retry import GaveUp, Reconnector
from bot.tracing import call_tags

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``ended_by`` of a call that lease recovery closed (see :func:`recover_expired`).
WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class PlacedCall:
    result: CallResult
    duration_s: float
    recording_path: str | None = None
    #: Voice calls: latency of each bot turn that answered the callee, by turn index.
    turn_latency_ms: Mapping[int, float] = field(default_factory=dict)
    #: Voice calls: what went wrong on the line, if anything.
    error: str | None = None


class Gateway(Protocol):
    """Places one call and runs the investigation on it."""

    def place(
        self, investigator: Investigator, account: Account, *, attempts_left: bool
    ) -> PlacedCall: ...


def unreached(
    investigator: Investigator,
    account: Account,
    outcome: Outcome,
    ended_by: str,
    *,
    attempts_left: bool,
) -> CallResult:
    """The result of a call that never reached a dialogue (no answer, busy, failure)."""
    return investigator.unreached(account, outcome, ended_by, attempts_left=attempts_left)


@dataclass
class SimulatedGateway:
    """Text-mode gateway: the callee of each account is a persona (answers by topic).
    Accounts without a persona do not answer."""

    answers: Mapping[str, Mapping[str, str | None]]

    def place(
        self, investigator: Investigator, account: Account, *, attempts_left: bool
    ) -> PlacedCall:
        persona = self.answers.get(account.account_id)
        if persona is None:
            return PlacedCall(
                unreached(
                    investigator, account, Outcome.NO_ANSWER, "gateway", attempts_left=attempts_left
                ),
                30.0,
            )
        callee = PersonaCallee(persona)
        result = investigator.run_text(account, callee, attempts_left=attempts_left)
        return PlacedCall(result, callee.clock)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerStats:
    calls: int = 0
    failed: int = 0
    lost: int = 0
    recovered: int = 0
    #: Database outages ridden out, and the retries they took.
    outages: int = 0
    db_retries: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Notice:
    """One line the worker has to say. ``status``: the periodic status line; ``warn``:
    calls do not connect; ``info``: they connect again; ``idle``: why ``until_idle``
    stops now."""

    kind: Literal["status", "warn", "info", "idle"]
    text: str


@dataclass(frozen=True)
class IdleExit:
    """Why ``run(until_idle=True)`` returned: the queue as it was then."""

    at: dt.datetime
    horizon_s: float
    next_due: dt.datetime | None
    queued: int


class Worker:
    def __init__(
        self,
        engine: Engine,
        investigator: Investigator,
        gateway: Gateway,
        *,
        worker_id: str | None = None,
        concurrency: int = 1,
        lease_s: float = 120.0,
        poll_s: float = 0.5,
        calls_per_second: float | None = None,
        global_cap: int | None = None,
        on_call: Callable[[Claim, CallResult | None], None] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        reconnector: Reconnector | None = None,
        outbox_wait_s: float | None = None,
        idle_horizon_s: float = 60.0,
        status_every_s: float = 0.0,
        on_notice: Callable[[Notice], None] | None = None,
        connect_warn_after: int = progress.CONNECT_WARN_AFTER,
        monotonic: Callable[[], float] = time.monotonic,
        local_tz: dt.tzinfo | None = None,
        hold: Callable[[], str | None] | None = None,
    ) -> None:
        """``outbox_wait_s``: with ``run(until_idle=True)``, also wait for the outbox
        (delivered by another thread or process) until no disposition is due within that
        many seconds; see :func:`outbox_outstanding`. None: do not wait for it.

        ``idle_horizon_s``: with ``until_idle``, queued items due (by ``clock``, in their
        calling hours) within that many seconds are waited for; items due later are not
        (retries backing off, calling hours closed), so the worker exits. ``status_every_s``:
        a status line every that many seconds (``monotonic``), 0 = none.
        ``connect_warn_after``: that many unanswered calls in a row are warned about.
        ``local_tz``: the time zone times are shown in (None: this machine's).
        ``hold``: asked before claiming; a reason (the ASR queue over its bound:
        :func:`bot.voice.asr_service.hold_reason`) means no new calls now, those in
        progress go on."""
        self.engine = engine
        self.investigator = investigator
        self.gateway = gateway
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.min_interval = 1.0 / calls_per_second if calls_per_second else 0.0
        self.global_cap = global_cap
        self.on_call = on_call
        self.clock = clock
        self.db = reconnector or Reconnector()
        self.outbox_wait_s = outbox_wait_s
        self.idle_horizon_s = idle_horizon_s
        self.status_every_s = status_every_s
        self.on_notice = on_notice
        self.monotonic = monotonic
        self.local_tz = local_tz
        self.hold = hold
        #: Why new calls are held back now (None: they are not).
        self.held: str | None = None
        self.stats = WorkerStats()
        self.progress = progress.Progress()
        self.connect_watch = progress.ConnectWatch(connect_warn_after)
        #: Set when ``run(until_idle=True)`` stopped because nothing was due soon.
        self.idle_exit: IdleExit | None = None
        self._live = 0
        self._last_status: float | None = None
        self._last_status_text = ""
        self._last_dial = 0.0
        self._stop = threading.Event()
        #: When the main loop last turned (monotonic; None before ``run``): ``/readyz``.
        self.last_turn: float | None = None

    def _db(self, unit: Callable[[], T]) -> T:
        """Run one database unit of work, riding out outages until the worker stops."""
        return self.db.call(unit, stop=self._stop)

    # -- one call -----------------------------------------------------------------

    def _pace(self) -> None:
        """The gateway's call rate limit (per worker process)."""
        if self.min_interval:
            wait = self._last_dial + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_dial = time.monotonic()

    def _load_account(self, c: Claim) -> Account:
        with session_scope(self.engine) as session:
            row = session.get(AccountRow, c.account_pk)
            assert row is not None
            return to_account(row)

    def run_claim(self, c: Claim) -> CallResult | None:
        """Place the claimed call and store its result; never raises for call errors."""
        attempts_left = c.attempt_no < c.max_attempts
        account = self._db(lambda: self._load_account(c))
        self._pace()
        try:
            with call_tags(campaign_id=c.campaign_id, call_id=c.call_id, attempt=c.attempt_no):
                placed = self.gateway.place(self.investigator, account, attempts_left=attempts_left)
        except Exception as exc:  # the call failed; the worker must go on
            log.warning("call %s failed: %s", c.call_id, exc)
            log.debug("%s", traceback.format_exc())
            self.stats.failed += 1
            result = unreached(
                self.investigator,
                account,
                Outcome.FAILED,
                f"error: {type(exc).__name__}",
                attempts_left=attempts_left,
            )
            placed = PlacedCall(result, 0.0, error=f"{type(exc).__name__}: {exc}")
        if not self._store(c, placed):
            self.stats.lost += 1
            return None
        self.stats.calls += 1
        return placed.result

    def _store(self, c: Claim, placed: PlacedCall) -> bool:
        """Record the call (one transaction); False if its lease was lost.

        A connection can drop after the server committed but before the worker heard so.
        Every try after the first therefore looks at the call first: ended means the
        earlier try landed (or lease recovery closed the call), and nothing is written
        again. A try that fails before committing leaves nothing behind."""
        tried = False

        def unit() -> bool:
            nonlocal tried
            if tried:
                ended_by = call_ended_by(self.engine, c.call_id)
                if ended_by is not None:
                    log.info("work item %s: result already stored before the outage", c.item_id)
                    return ended_by != WORKER_LOST
            tried = True
            record_result(
                self.engine,
                c,
                placed.result,
                duration_s=placed.duration_s,
                recording_path=placed.recording_path,
                turn_latency_ms=placed.turn_latency_ms,
                error=placed.error,
                now=self.clock(),
            )
            return True

        try:
            return self._db(unit)
        except LeaseLost as exc:
            log.warning("%s", exc)
            return False

    # -- the loop -----------------------------------------------------------------

    def _collect(self, c: Claim, future: Future[CallResult | None]) -> None:
        """A finished call thread. An error that escaped it (bad account data, the
        database gone) leaves the item to lease recovery, which retries it and, if it
        keeps failing, hands it to people."""
        try:
            result = future.result()
        except Exception:
            log.exception("work item %s: call could not be run or stored", c.item_id)
            self.stats.failed += 1
            return
        if result is not None:
            self._tally(str(result.record.outcome))
        if self.on_call:
            self.on_call(c, result)

    # -- saying what it does ------------------------------------------------------

    def _notice(self, kind: Literal["status", "warn", "info", "idle"], text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(Notice(kind, text))
        else:
            log.log(logging.WARNING if kind == "warn" else logging.INFO, "%s", text)

    def _tally(self, outcome: str) -> None:
        """A stored call: count it, and watch whether calls still connect."""
        streak = +self.connect_watch.streak  # before observe() clears it
        streak[outcome] += 1
        self.progress.record(outcome, self.monotonic())
        change = self.connect_watch.observe(outcome)
        if change == "warn":
            self._notice("warn", progress.connect_warning(streak, type(self.gateway).__name__))
        elif change == "recovered":
            self._notice("info", progress.CONNECT_RECOVERED)

    def status(self, view: QueueView | None = None) -> str:
        """The status line now (reads the queue unless ``view`` is given)."""
        now = self.clock()
        if view is None:
            view = self._db(lambda: queue_view(self.engine, now=now))
        return progress.status_line(
            progress.StatusInput(
                now=now,
                calls_per_min=self.progress.calls_per_min(self.monotonic()),
                outcomes=self.progress.outcomes,
                live=self._live,
                concurrency=self.concurrency,
                queued=view.queued,
                due_now=view.due_now,
                next_due=view.next_due,
                in_progress=view.in_progress,
                held=self.held,
            ),
            self.local_tz,
        )

    def _maybe_status(self) -> None:
        if self.status_every_s <= 0:
            return
        t = self.monotonic()
        if self._last_status is not None and t - self._last_status < self.status_every_s:
            return
        self._last_status = t
        self._say_status()

    def _say_status(self, view: QueueView | None = None, *, if_new: bool = False) -> None:
        """The status line (with ``if_new``: unless it says just what the last one said)."""
        text = self.status(view)
        if not (if_new and text == self._last_status_text):
            self._last_status_text = text
            self._notice("status", text)

    def _renew(self, live: dict[Future[CallResult | None], Claim]) -> None:
        for c in list(live.values()):
            self._db(functools.partial(self._renew_one, c))

    def _renew_one(self, c: Claim) -> None:
        renew_lease(self.engine, c, lease_s=self.lease_s, now=self.clock())

    def _idle(self) -> bool:
        """Nothing left for ``until_idle`` to wait for: no call live (here or in another
        worker), nothing due within ``idle_horizon_s``, and (when asked to wait for it)
        no disposition the delivery loop will still try soon."""
        now = self.clock()
        view = self._db(lambda: queue_view(self.engine, now=now))
        if view.in_progress:
            return False
        horizon = now + dt.timedelta(seconds=self.idle_horizon_s)
        if view.next_due is not None and view.next_due <= horizon:
            return False
        if self.outbox_wait_s is not None:
            wait_s = self.outbox_wait_s
            if self._db(lambda: outbox_outstanding(self.engine, within_s=wait_s)):
                return False
        self.idle_exit = IdleExit(now, self.idle_horizon_s, view.next_due, view.queued)
        if self.status_every_s > 0:
            self._say_status(view, if_new=True)  # the last word before exiting
        self._notice(
            "idle", progress.idle_exit_line(self.idle_horizon_s, view.next_due, now, self.local_tz)
        )
        return True

    def run(self, stop: threading.Event | None = None, *, until_idle: bool = False) -> WorkerStats:
        """Work until ``stop`` is set (or, with ``until_idle``, until no campaign has
        anything left to do now and, with ``outbox_wait_s``, the outbox is drained)."""
        stop = self._stop = stop or threading.Event()
        try:
            with ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="call"
            ) as pool:
                self._loop(pool, stop, until_idle)
        except GaveUp as exc:  # stopped during an outage: leases recover what was live
            log.warning("worker %s: %s", self.worker_id, exc)
        finally:
            metrics.worker_load(0, 0)
        self.stats.outages, self.stats.db_retries = self.db.outages, self.db.retries
        return self.stats

    def _claim(self, free: int) -> list[Claim]:
        if not free:
            return []
        return self._db(
            lambda: claim(
                self.engine,
                self.worker_id,
                limit=free,
                now=self.clock(),
                lease_s=self.lease_s,
                global_cap=self.global_cap,
            )
        )

    def _loop(self, pool: ThreadPoolExecutor, stop: threading.Event, until_idle: bool) -> None:
        live: dict[Future[CallResult | None], Claim] = {}
        last_renew = time.monotonic()
        while not stop.is_set():
            self.last_turn = time.monotonic()
            self.stats.recovered += self._db(lambda: recover_expired(self.engine, now=self.clock()))
            free = self.concurrency - len(live)
            self.held = self.hold() if free and self.hold is not None else None
            claims = self._claim(0 if self.held else free)
            for c in claims:
                live[pool.submit(self.run_claim, c)] = c
            done = [f for f in live if f.done()]
            for f in done:
                self._collect(live.pop(f), f)
            self._live = len(live)
            metrics.worker_load(len(live), self.concurrency)
            self._maybe_status()
            if time.monotonic() - last_renew > self.lease_s / 3:
                self._renew(live)
                last_renew = time.monotonic()
            if claims or done:
                continue
            self._db(lambda: finish_campaigns(self.engine))
            if until_idle and not live and self._idle():
                break
            stop.wait(self.poll_s if not live else 0.01)


def call_ended_by(engine: Engine, call_id: int) -> str | None:
    """How a stored call ended (``ended_by``; ``""`` if it has none), or None while the
    call is still open (its result not stored yet)."""
    with session_scope(engine) as session:
        row = session.exec(
            select(CallRow.ended_at, CallRow.ended_by).where(CallRow.id == call_id)
        ).first()
        if row is None or row[0] is None:
            return None
        return row[1] or ""


def outbox_outstanding(engine: Engine, *, within_s: float, now: dt.datetime | None = None) -> int:
    """Pending outbox items the delivery loop will try within ``within_s`` seconds: due
    now, being delivered (a claimed item was due when it was claimed), or backing off
    for less than that. Dead items and items backing off for longer do not count, so
    waiting for this to reach 0 ends even when the bank's endpoint is down: each failure
    pushes an item's next attempt further out (exponential backoff) until it is beyond
    ``within_s`` or the item is dead. Real time, not a worker's test clock: the delivery
    loop schedules by it."""
    horizon = (now or utcnow()) + dt.timedelta(seconds=within_s)
    with session_scope(engine) as session:
        n = session.exec(
            select(sa.func.count())
            .select_from(OutboxRow)
            .where(col(OutboxRow.state) == "pending", col(OutboxRow.next_attempt_at) <= horizon)
        ).one()
        return int(n)


def finish_campaigns(engine: Engine) -> list[str]:
    """Mark running campaigns with nothing left queued or in progress as completed."""
    with session_scope(engine) as session:
        running = session.exec(select(CampaignRow).where(CampaignRow.state == "running")).all()
        finished = []
        for c in running:
            pending = session.exec(
                select(sa.func.count())
                .select_from(CampaignAccountRow)
                .where(
                    CampaignAccountRow.campaign_id == c.id,
                    col(CampaignAccountRow.state).in_(["queued", "in_progress"]),
                )
            ).one()
            if not pending:
                c.state, c.finished_at = "completed", utcnow()
                session.add(c)
                finished.append(c.name)
        return finished
