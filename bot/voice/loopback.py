"""The loopback gateway: "calls" a simulated callee on the same machine.

The callee (:class:`~bot.sim.phone.PhoneCallee`) connects to the bot's media endpoint
over a real WebSocket and speaks the Twilio protocol, so a loopback call exercises the
same code as a call through a real gateway: serializer, VAD, Whisper, dialogue, TTS,
recording. :class:`LoopbackLine` is the asyncio API (evaluation, ``bot call``, tests);
:class:`LoopbackGateway` adapts it to the campaign worker's synchronous ``Gateway``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.campaign.worker import PlacedCall
from bot.core.account import Account
from bot.core.investigation import Investigator
from bot.core.vocab import Outcome
from bot.sim.phone import Behaviour, CalleeLog, PhoneCallee, persona_clips
from bot.voice.audio import AudioError
from bot.voice.processor import TurnListener
from bot.voice.server import VoiceServer
from bot.voice.session import VoiceCallResult, VoiceStack
from bot.voice.timeline import CallTimeline

T = TypeVar("T")


@dataclass
class LoopbackCall:
    voice: VoiceCallResult
    callee: CalleeLog


class LoopbackLine:
    """Places calls to simulated callees through a running :class:`VoiceServer`."""

    def __init__(self, server: VoiceServer) -> None:
        self.server = server

    @property
    def investigator(self) -> Investigator:
        return self.server.stack.investigator

    async def call(
        self,
        account: Account,
        callee: PhoneCallee,
        *,
        attempts_left: bool = True,
        on_turn: TurnListener | None = None,
    ) -> LoopbackCall:
        book = self.server.book
        pending = book.expect(account, attempts_left=attempts_left, on_turn=on_turn)
        line = asyncio.create_task(callee.run(self.server.media_url, pending.call_key))
        try:
            waiting: set[asyncio.Future[Any]] = {pending.result, line}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not pending.result.done() and book.take(pending.call_key) is not None:
                # the callee went away and no media session ever started for this call
                log = await line
                reason = log.error or "the gateway never started the media stream"
                return LoopbackCall(self.failed(account, reason, attempts_left), log)
            voice = await pending.result
            return LoopbackCall(voice, await line)
        finally:
            book.discard(pending.call_key)
            if not line.done():
                line.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await line

    def failed(self, account: Account, reason: str, attempts_left: bool) -> VoiceCallResult:
        result = self.investigator.unreached(
            account, Outcome.FAILED, "line_failure", attempts_left=attempts_left
        )
        return VoiceCallResult(result, CallTimeline(), 0.0, error=reason)

    async def call_persona(
        self,
        account: Account,
        answers: Mapping[str, str | None],
        audio_dir: Path,
        *,
        suffix: str = ".wav",
        behaviour: Behaviour | None = None,
        attempts_left: bool = True,
        on_turn: TurnListener | None = None,
    ) -> LoopbackCall:
        """A call to a persona whose answers are recordings under ``audio_dir``;
        unreadable audio fails the call (and only the call)."""
        try:
            clips = await asyncio.to_thread(persona_clips, answers, audio_dir, suffix)
        except AudioError as exc:
            return LoopbackCall(
                self.failed(account, str(exc), attempts_left), CalleeLog(error=str(exc))
            )
        return await self.call(
            account, PhoneCallee(clips, behaviour), attempts_left=attempts_left, on_turn=on_turn
        )


class BackgroundLoop:
    """An event loop in a daemon thread, for synchronous callers (the campaign worker)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="voice-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class LoopbackGateway:
    """The campaign worker's ``Gateway`` over loopback phone calls: each account whose
    id matches a persona is called, and its callee answers with the persona's
    recordings (``<audio_root>/<persona id>/<topic>.wav``); other accounts do not answer.

    The media server and the calls run on one background event loop; the worker's
    threads (``--concurrency``) each wait for their own call. It listens where the
    stack's settings say (``voice.host``/``voice.port``, ``BOT_VOICE__PORT``; port 0 =
    any free port) unless ``host``/``port`` are given.
    """

    def __init__(
        self,
        stack: VoiceStack,
        personas: Mapping[str, tuple[str, Mapping[str, str | None]]],
        audio_root: Path,
        *,
        suffix: str = ".wav",
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.personas = personas
        self.audio_root = audio_root
        self.suffix = suffix
        self._server = VoiceServer(
            stack,
            host=stack.settings.host if host is None else host,
            port=stack.settings.port if port is None else port,
        )
        self._loop = BackgroundLoop()
        try:
            self._loop.run(self._server.start())
        except BaseException:
            self._loop.close()
            raise
        self.line = LoopbackLine(self._server)

    @property
    def media_url(self) -> str:
        return self._server.media_url

    def place(
        self, investigator: Investigator, account: Account, *, attempts_left: bool
    ) -> PlacedCall:
        persona = self.personas.get(account.account_id)
        if persona is None:
            result = investigator.unreached(
                account, Outcome.NO_ANSWER, "gateway", attempts_left=attempts_left
            )
            return PlacedCall(result, 30.0)
        persona_id, answers = persona
        call = self._loop.run(
            self.line.call_persona(
                account,
                answers,
                self.audio_root / persona_id,
                suffix=self.suffix,
                attempts_left=attempts_left,
            )
        )
        voice = call.voice
        path = str(voice.recording_path) if voice.recording_path else None
        return PlacedCall(
            voice.result, voice.duration_s, path, voice.timeline.by_turn(), voice.error
        )

    def health(self) -> str:
        """The media server's state, for the worker's ``/readyz``."""
        return self._server.health()

    def close(self) -> None:
        self._loop.run(self._server.stop(), timeout=30)
        self._loop.close()
