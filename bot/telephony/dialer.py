"""Provider-neutral outbound dialling: the call-control types every gateway shares.

A gateway adapter (:class:`Dialer`) places the call; the provider then reports progress
on HTTP callbacks, which its webhook router turns into :class:`DialStatusEvent` and
publishes on a :class:`CallStatusBoard`. The orchestrator awaits the board:

    board.expect(key)                      # before dialling: early callbacks are kept
    call_id = await dialer.dial(DialRequest(to, key, stream_url))
    first = await board.wait_answered_or_final(key, timeout=60)
    if first.status.is_final: outcome = outcome_for(first)   # never answered
    else: ...run the dialogue on the media stream tagged with ``call_key``...

Everything here is plain data and asyncio; no HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from cachetools import FIFOCache

from bot.core.vocab import Outcome


class CallStatus(StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELED = "canceled"

    @classmethod
    def parse(cls, raw: str) -> CallStatus:
        """Provider spelling to member: ``in-progress``, ``no-answer``, ``initiated``
        (Twilio's status-callback word for queued), any case. Unknown -> ``ValueError``."""
        word = raw.strip().lower().replace("-", "_")
        if word == "initiated":
            return cls.QUEUED
        return cls(word)

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.FAILED,
        CallStatus.CANCELED,
    }
)


class AnsweredBy(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    FAX = "fax"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: str | None) -> AnsweredBy | None:
        """Twilio's AMD verdict; ``machine_start``/``machine_end_*`` collapse to machine.
        Empty -> ``None`` (no detection ran); anything unrecognised -> unknown."""
        if not raw or not raw.strip():
            return None
        word = raw.strip().lower()
        if word.startswith("machine"):
            return cls.MACHINE
        try:
            return cls(word)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class DialRequest:
    """One call attempt. ``call_key`` is our id for it: it rides to the media stream
    (TwiML ``<Parameter name="call_key">``) and in the callback URLs, so the websocket
    and the callbacks can be matched to the attempt."""

    to: str
    call_key: str
    stream_url: str
    machine_detection: bool = True
    timeout_s: int = 30


@dataclass(frozen=True)
class DialStatusEvent:
    call_id: str
    call_key: str
    status: CallStatus
    answered_by: AnsweredBy | None
    duration_s: float | None
    at: datetime


class Dialer(Protocol):
    """A telephony gateway adapter (Twilio, Telnyx, Plivo ...)."""

    async def dial(self, req: DialRequest) -> str:
        """Place the call; returns the provider's call id. Raises on refusal."""
        ...

    async def hangup(self, call_id: str) -> None:
        """End the call whatever its state (ringing or answered); idempotent."""
        ...

    async def aclose(self) -> None: ...


def outcome_for(event: DialStatusEvent) -> Outcome | None:
    """The call outcome that call control alone decides, else ``None``.

    Unanswered finals map one to one (``canceled`` - we stopped the ringing ourselves -
    counts as ``no_answer``); an answering machine is ``voicemail`` as soon as it is
    known, even while the call is still up; a fax line is ``failed``. A human (or an
    undetermined) answer is ``None``: the dialogue decides.
    """
    status = event.status
    if status in (CallStatus.NO_ANSWER, CallStatus.CANCELED):
        return Outcome.NO_ANSWER
    if status is CallStatus.BUSY:
        return Outcome.BUSY
    if status is CallStatus.FAILED:
        return Outcome.FAILED
    if status in (CallStatus.IN_PROGRESS, CallStatus.COMPLETED):
        if event.answered_by is AnsweredBy.MACHINE:
            return Outcome.VOICEMAIL
        if event.answered_by is AnsweredBy.FAX:
            return Outcome.FAILED
    return None


class _Attempt:
    __slots__ = ("answered", "answered_by", "final", "latest")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answered: asyncio.Future[DialStatusEvent] = loop.create_future()
        self.final: asyncio.Future[DialStatusEvent] = loop.create_future()
        self.answered_by: AnsweredBy | None = None
        self.latest: DialStatusEvent | None = None


class CallStatusBoard:
    """Routes provider callbacks to whoever waits on a call attempt.

    Lives on one event loop (the web app's); not thread-safe. Keys are registered with
    :meth:`expect` *before* dialling, so a callback that beats ``dial()``'s return is
    not lost; events for keys never expected are dropped (a forged or stale callback
    cannot create state). An attempt is forgotten when its final status arrives (the
    final events of the last ``keep_finished`` attempts stay readable for late callers)
    or by :meth:`forget` (dial failed, caller gave up), so memory stays flat however
    many calls go through.

    Callbacks may arrive out of order and the AMD verdict on its own callback: the board
    remembers an attempt's ``answered_by`` and fills it into later events that lack it,
    so the final ``completed`` of a voicemail still says ``machine``.
    """

    def __init__(self, keep_finished: int = 1024) -> None:
        self._attempts: dict[str, _Attempt] = {}
        # The oldest finished attempts are forgotten first.
        self._finished: FIFOCache[str, DialStatusEvent] = FIFOCache(maxsize=keep_finished)

    def __len__(self) -> int:
        """Attempts still awaiting their final status."""
        return len(self._attempts)

    def expect(self, call_key: str) -> asyncio.Future[DialStatusEvent]:
        """Register an attempt; returns a future of its final event. Idempotent."""
        attempt = self._attempts.get(call_key)
        if attempt is None:
            self._finished.pop(call_key, None)
            attempt = self._attempts[call_key] = _Attempt(asyncio.get_running_loop())
        return attempt.final

    def publish(self, event: DialStatusEvent) -> bool:
        """Deliver one event; ``False`` when nobody expects its key (dropped)."""
        attempt = self._attempts.get(event.call_key)
        if attempt is None:
            return False
        if event.answered_by is None and attempt.answered_by is not None:
            event = dataclasses.replace(event, answered_by=attempt.answered_by)
        elif event.answered_by is not None:
            attempt.answered_by = event.answered_by
        attempt.latest = event
        answered = event.status is CallStatus.IN_PROGRESS or event.status.is_final
        if answered and not attempt.answered.done():
            attempt.answered.set_result(event)
        if event.status.is_final:
            attempt.final.set_result(event)
            del self._attempts[event.call_key]
            self._remember(event)
        return True

    def latest(self, call_key: str) -> DialStatusEvent | None:
        """The last event seen for an attempt (pending or recently finished)."""
        attempt = self._attempts.get(call_key)
        if attempt is not None:
            return attempt.latest
        return self._finished.get(call_key)

    async def wait_answered_or_final(self, call_key: str, timeout: float) -> DialStatusEvent:
        """The first ``in_progress`` event, or the final one if the call never got there.
        Raises ``TimeoutError`` after ``timeout`` s and ``KeyError`` for an unknown key."""
        attempt = self._attempts.get(call_key)
        if attempt is None:
            if call_key in self._finished:
                return self._finished[call_key]
            raise KeyError(call_key)
        return await asyncio.wait_for(asyncio.shield(attempt.answered), timeout)

    async def final(self, call_key: str, timeout: float | None = None) -> DialStatusEvent:
        """The attempt's final event (waits for it). ``TimeoutError``/``KeyError`` as above."""
        attempt = self._attempts.get(call_key)
        if attempt is None:
            if call_key in self._finished:
                return self._finished[call_key]
            raise KeyError(call_key)
        return await asyncio.wait_for(asyncio.shield(attempt.final), timeout)

    def forget(self, call_key: str) -> None:
        """Drop an attempt that will never finish here (dial refused, caller gave up).
        Its waiters get ``asyncio.CancelledError``."""
        attempt = self._attempts.pop(call_key, None)
        if attempt is not None:
            attempt.answered.cancel()
            attempt.final.cancel()
        self._finished.pop(call_key, None)

    def _remember(self, event: DialStatusEvent) -> None:
        self._finished[event.call_key] = event
