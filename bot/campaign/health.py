"""``/healthz`` and ``/readyz`` for ``bot worker`` (served with ``/metrics`` on
``voice.metrics_port``): what a supervisor (Kubernetes, systemd, a load balancer) asks
before counting a worker as able to place calls.

Readiness is a set of named checks, each answering ``ok`` or what is wrong, in words that
carry no address or credential. The worker registers them as it starts: until the models
are loaded the worker is ``starting``; then its main loop must keep turning (a loop stuck
for longer than :data:`STALL_S` is reported), the database must answer, the delivery
thread (when it runs) must be alive, and a voice gateway's media server must be
listening."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.store.db import database_answers

#: A main loop that has not turned for this long is reported as stalled. The loop turns
#: every poll interval (0.5 s) even while calls run; a database outage keeps it in
#: retries, which is what readiness should say.
STALL_S = 30.0
#: How long the database check waits for ``SELECT 1``.
DB_TIMEOUT_S = 2.0

Check = Callable[[], str]


@dataclass
class WorkerHealth:
    """The worker's readiness checks, filled in as it starts (thread-safe to read)."""

    checks: dict[str, Check] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.checks.setdefault("models", lambda: "loading")

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def report(self) -> tuple[bool, dict[str, str]]:
        """(ready, each check's answer); a check that raises answers with its type."""
        answers = {}
        for name, check in list(self.checks.items()):
            try:
                answers[name] = check()
            except Exception as exc:  # a probe must answer, whatever broke
                answers[name] = f"check failed ({type(exc).__name__})"
        return all(v == "ok" for v in answers.values()), answers

    # -- the checks the worker registers ------------------------------------------------

    def models_loaded(self) -> None:
        self.add("models", lambda: "ok")

    def watch_loop(self, last_turn: Callable[[], float | None]) -> None:
        """``last_turn``: the monotonic time the main loop last turned (None: not yet)."""

        def check() -> str:
            turned = last_turn()
            if turned is None:
                return "not started"
            idle = self.clock() - turned
            return "ok" if idle < STALL_S else f"main loop stalled for {idle:.0f} s"

        self.add("worker", check)

    def watch_database(self, engine: Engine, timeout_s: float = DB_TIMEOUT_S) -> None:
        self.add("database", lambda: database_answers(engine, timeout_s))

    def watch_thread(self, name: str, thread: threading.Thread) -> None:
        self.add(name, lambda: "ok" if thread.is_alive() else "stopped")

    def watch_gateway(self, gateway: object) -> None:
        """A gateway with a ``health()`` method (the voice gateways: their media server)."""
        health = getattr(gateway, "health", None)
        if callable(health):
            self.add("gateway", lambda: str(health()))
