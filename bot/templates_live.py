"""The investigator of a worker that runs the published templates: a newly published set
is picked up for the next call, without a restart.

With ``templates_source = "database"`` the investigator :func:`bot.runtime.build_investigator`
returns is a :class:`LiveInvestigator`. Before a call starts it asks, at most every
``templates_reload_s`` seconds, whether the published set changed (the digest of the set
that would run, :func:`bot.templates_store.set_digest`: one query and the packaged files
read). When it did, the new set is materialised and loaded with the same start-up checks
(lint, routing); scripts, routing and rule set are swapped, while the NLU and the policy
stay loaded. A call in progress keeps the set it started with: it is concluded (scored)
by the investigator that began its dialogue.

A set that fails the checks, or a database that does not answer, leaves the running set in
place (logged; tried again at the next interval). Each set a process starts running is
written to the audit log (``templates_loaded``, actor ``worker:<host>:<pid>``): the
workspace shows which set the workers run and when they picked it up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.core.account import Account
from bot.core.dialogue import DialogueManager, DialogueRecord
from bot.core.investigation import Callee, CallResult, Investigator
from bot.core.vocab import Outcome
from bot.core.yamlsource import SourceFileError
from bot.settings import Settings
from bot.store.models import AuditEventRow, utcnow
from bot.templates_store import (
    Materialised,
    assemble,
    base_ruleset_path,
    materialise,
    published_set,
    set_digest,
)

log = logging.getLogger(__name__)

#: The audit action written when a process starts running a template set.
LOADED = "templates_loaded"
#: Builds the investigator core for a templates tree and rule set (raises on errors).
Build = Callable[[Path, Path], Investigator]


def current_digest(settings: Settings, engine: Engine) -> str:
    """The digest of the set that would run now (nothing is written)."""
    with Session(engine) as session:
        published = published_set(session)
    return set_digest(assemble(settings.templates_dir, base_ruleset_path(settings), published))


def worker_name() -> str:
    return f"worker:{socket.gethostname()}:{os.getpid()}"[:60]


def record_loaded(engine: Engine, found: Materialised, previous: str | None) -> None:
    """One ``templates_loaded`` event; a failure to write it only logs (the set runs)."""
    try:
        with Session(engine) as session:
            session.add(
                AuditEventRow(
                    at=utcnow(),
                    actor=worker_name(),
                    action=LOADED,
                    object_type="template_set",
                    object_id=found.digest[:24],
                    detail={"digest": found.digest, "replaces": previous},
                )
            )
            session.commit()
    except Exception as exc:  # the audit row is information, not a condition to run
        log.warning("templates: could not record set %s as loaded: %s", found.digest[:12], exc)


class LiveInvestigator(Investigator):
    """An :class:`Investigator` whose scripts, routing and rule set follow the published
    set (see the module docstring). Every call goes to the investigator of the set that
    was current when the call began."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        build: Build,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Investigator.__init__ is not called: every attribute is the current core's.
        self._settings = settings
        self._engine = engine
        self._build = build
        self._clock = clock
        self._interval = settings.templates_reload_s
        self._lock = threading.Lock()
        self._calls: dict[int, Investigator] = {}
        self._refused: str | None = None
        found = self._materialise()
        self._current = build(found.root, found.ruleset)  # broken at start: raises
        self.digest = found.digest
        self._checked = clock()
        record_loaded(engine, found, None)

    def _materialise(self) -> Materialised:
        s = self._settings
        return materialise(
            self._engine, s.templates_dir, base_ruleset_path(s), s.data_dir / "templates"
        )

    # -- the set in use -------------------------------------------------------------------

    def current(self) -> Investigator:
        """The investigator of the published set, checked at most every interval."""
        with self._lock:
            now = self._clock()
            if now - self._checked >= self._interval:
                self._checked = now
                self._refresh()
            return self._current

    def _refresh(self) -> None:
        digest: str | None = None
        try:
            digest = current_digest(self._settings, self._engine)
            if digest in (self.digest, self._refused):
                return
            found = self._materialise()
            fresh = self._build(found.root, found.ruleset)
        except Exception as exc:  # keep calling with the set that works
            log.error(
                "templates: keeping set %s; the published set cannot run: %s",
                self.digest[:12],
                exc,
            )
            # a set that fails its checks is not rebuilt every interval; an outage is retried
            if isinstance(exc, SourceFileError):
                self._refused = digest
            return
        previous, self.digest, self._current = self.digest, found.digest, fresh
        log.info("templates: now running set %s (was %s)", found.digest[:12], previous[:12])
        record_loaded(self._engine, found, previous)

    # -- calls: each one with the set it began with -----------------------------------

    def dialogue(self, account: Account, script_id: str | None = None) -> DialogueManager:
        core = self.current()
        dm = core.dialogue(account, script_id)
        key = id(dm.record)
        self._calls[key] = core
        weakref.finalize(dm.record, self._calls.pop, key, None).atexit = False
        return dm

    def conclude(
        self,
        account: Account,
        record: DialogueRecord,
        *,
        attempts_left: bool = True,
        call_key: str = "",
    ) -> CallResult:
        core = self._calls.pop(id(record), None) or self.current()
        return core.conclude(account, record, attempts_left=attempts_left, call_key=call_key)

    def unreached(
        self, account: Account, outcome: Outcome, ended_by: str, *, attempts_left: bool
    ) -> CallResult:
        return self.current().unreached(account, outcome, ended_by, attempts_left=attempts_left)

    def run_text(
        self, account: Account, callee: Callee, *, attempts_left: bool = True
    ) -> CallResult:
        return self.current().run_text(account, callee, attempts_left=attempts_left)

    # -- what callers read of an investigator ---------------------------------------------

    def __getattr__(self, name: str) -> Any:
        """``library``, ``router``, ``scorer``, ``policy``, ``analyzer``, ``bank_name``...
        of the current set (only looked up for what this object does not have itself)."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.current(), name)
