"""Calls through a real telephony provider: dial over its REST API, talk over its stream.

One attempt, start to end:

1. the media server expects a stream for a fresh ``call_key`` and the status board
   expects that key's call-progress callbacks;
2. the dialler asks the provider to call the account's phone; the TwiML it sends
   connects the answered call to our media endpoint with ``call_key`` as a parameter;
3. if the call ends before anyone answers (no answer, busy, failed), or an answering
   machine picks up, the outcome comes from the callback and nothing is said: no
   message is ever left on a voicemail;
4. if a person answers, the media session (:mod:`bot.voice.session`) runs the
   dialogue; when it ends, the call is hung up through the REST API.

:class:`TelephonyGateway` is the campaign worker's synchronous ``Gateway`` around this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI

from bot.campaign.worker import PlacedCall
from bot.core.account import Account
from bot.core.investigation import Investigator
from bot.core.vocab import Outcome
from bot.telephony.dialer import CallStatusBoard, Dialer, DialRequest, outcome_for
from bot.voice.loopback import BackgroundLoop
from bot.voice.server import VoiceServer
from bot.voice.session import VoiceCallResult, VoiceStack
from bot.voice.timeline import CallTimeline

log = logging.getLogger(__name__)


@dataclass
class RingPolicy:
    #: How long the phone may ring (the provider's own timeout is set to this too).
    ring_timeout_s: float = 30.0
    #: After the answer, how long the media stream may take to connect.
    connect_timeout_s: float = 10.0


class TelephonyCaller:
    """Places calls through ``dialer`` and hosts their media on ``server`` (asyncio)."""

    def __init__(
        self,
        server: VoiceServer,
        dialer: Dialer,
        board: CallStatusBoard,
        stream_url: str,
        policy: RingPolicy | None = None,
    ) -> None:
        self.server = server
        self.dialer = dialer
        self.board = board
        self.stream_url = stream_url
        self.policy = policy or RingPolicy()

    @property
    def investigator(self) -> Investigator:
        return self.server.stack.investigator

    def _unreached(
        self, account: Account, outcome: Outcome, why: str, attempts_left: bool
    ) -> VoiceCallResult:
        result = self.investigator.unreached(account, outcome, why, attempts_left=attempts_left)
        return VoiceCallResult(result, CallTimeline(), 0.0)

    async def call(self, account: Account, *, attempts_left: bool = True) -> VoiceCallResult:
        book = self.server.book
        pending = book.expect(account, attempts_left=attempts_left)
        key = pending.call_key
        self.board.expect(key)
        call_id: str | None = None
        try:
            try:
                call_id = await self.dialer.dial(
                    DialRequest(
                        to=account.phone,
                        call_key=key,
                        stream_url=self.stream_url,
                        timeout_s=int(self.policy.ring_timeout_s),
                    )
                )
            except Exception as exc:
                log.warning("dialling failed: %s", exc)
                voice = self._unreached(account, Outcome.FAILED, "dial_error", attempts_left)
                voice.error = f"{type(exc).__name__}: {exc}"
                return voice
            try:
                event = await self.board.wait_answered_or_final(
                    key, self.policy.ring_timeout_s + self.policy.connect_timeout_s
                )
            except TimeoutError:
                return self._unreached(account, Outcome.NO_ANSWER, "ring_timeout", attempts_left)
            outcome = outcome_for(event)
            if event.status.is_final or outcome is not None:
                # not answered, or a machine answered: say nothing, leave nothing
                return self._unreached(
                    account, outcome or Outcome.FAILED, f"gateway:{event.status}", attempts_left
                )
            return await self._talk(key, pending.result, account, attempts_left)
        finally:
            book.discard(key)
            if call_id is not None:
                with contextlib.suppress(Exception):
                    await self.dialer.hangup(call_id)
            self.board.forget(key)

    async def _talk(
        self,
        key: str,
        result: asyncio.Future[VoiceCallResult],
        account: Account,
        attempts_left: bool,
    ) -> VoiceCallResult:
        """Someone answered: the provider connects the media stream and the dialogue runs,
        unless answering-machine detection (asynchronous, so it can come after the
        answer) says it is a machine: then the call is dropped at once, as voicemail."""
        cfg = self.server.stack.settings
        loop = asyncio.get_running_loop()
        connect_by = loop.time() + self.policy.connect_timeout_s
        give_up = connect_by + cfg.max_call_s
        ended_at: float | None = None
        while loop.time() < give_up:
            await asyncio.wait({asyncio.shield(result)}, timeout=0.2)
            if result.done():
                return result.result()
            latest = self.board.latest(key)
            if latest is None:
                continue
            outcome = outcome_for(latest)
            if outcome is not None:  # a machine (or a fax): nothing more is said
                return self._unreached(account, outcome, "gateway:amd", attempts_left)
            if latest.status.is_final:  # the line ended; give the session a moment
                ended_at = ended_at or loop.time()
                if loop.time() - ended_at > 3.0:
                    return self._unreached(account, Outcome.HUNG_UP, "callee_hangup", attempts_left)
            elif key in self.server.book and loop.time() > connect_by:  # stream never came
                voice = self._unreached(account, Outcome.FAILED, "no_media_stream", attempts_left)
                voice.error = "the answered call never connected its media stream"
                return voice
        voice = self._unreached(account, Outcome.FAILED, "call_time_limit", attempts_left)
        voice.error = "the call ran over its time limit"
        return voice


class TelephonyGateway:
    """The worker's ``Gateway`` over a real provider: a media server and the dialler
    on a background event loop; each worker thread waits for its own call."""

    def __init__(
        self,
        stack: VoiceStack,
        dialer: Dialer,
        stream_url: str,
        *,
        routers: Callable[[CallStatusBoard], list[APIRouter]] = lambda _board: [],
        host: str = "127.0.0.1",
        port: int = 8080,
        policy: RingPolicy | None = None,
    ) -> None:
        self._loop = BackgroundLoop()
        self.board = CallStatusBoard()
        self._server = VoiceServer(stack, host=host, port=port)
        for router in routers(self.board):  # the provider's callbacks feed the board
            self._server.app.include_router(router)
        self._loop.run(self._server.start())
        self.caller = TelephonyCaller(self._server, dialer, self.board, stream_url, policy)

    @property
    def app(self) -> FastAPI:
        return self._server.app

    def place(
        self, investigator: Investigator, account: Account, *, attempts_left: bool
    ) -> PlacedCall:
        voice = self._loop.run(self.caller.call(account, attempts_left=attempts_left))
        path = str(voice.recording_path) if voice.recording_path else None
        return PlacedCall(
            voice.result, voice.duration_s, path, voice.timeline.by_turn(), voice.error
        )

    def health(self) -> str:
        """The media server's state, for the worker's ``/readyz``."""
        return self._server.health()

    def close(self) -> None:
        self._loop.run(self.caller.dialer.aclose(), timeout=10)
        self._loop.run(self._server.stop(), timeout=30)
        self._loop.close()
