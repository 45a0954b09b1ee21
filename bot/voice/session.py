"""One phone call: a gateway media stream in, a pipecat pipeline around the dialogue.

:func:`run_media_session` is what the media WebSocket endpoint runs for each
connection. It reads the gateway's ``start`` message, finds the call that was dialled
(:class:`CallBook`, keyed by the ``call_key`` parameter we attached when dialling),
builds a fresh pipeline (processors are single-use; only the Whisper model and the TTS
cache are shared), runs it until the dialogue hangs up or the line drops, then concludes
the investigation and hands a :class:`VoiceCallResult` to whoever dialled.

Whatever goes wrong on the line ends that call, never the process: a socket that drops
mid-call is ``hung_up``; a line that carries no audio or only undecodable messages,
or an error inside the pipeline, is ``failed``; in every case what was said so far is
kept and scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_start import VADUserTurnStartStrategy
from pipecat.turns.user_stop import (
    BaseUserTurnStopStrategy,
    SpeechTimeoutUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
)
from pipecat.turns.user_turn_processor import UserTurnProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from bot.core.account import Account
from bot.core.dialogue import BotUtterance, DialogueRecord
from bot.core.investigation import CallResult, Investigator
from bot.core.vocab import Outcome
from bot.voice.asr import Transcriber
from bot.voice.audio import PHONE_RATE, WHISPER_RATE, write_wav
from bot.voice.config import VoiceSettings
from bot.voice.gateways import (
    CLOSE_INVALID_PAYLOAD,
    CLOSE_UNSUPPORTED_DATA,
    Provider,
    StreamStart,
    StreamStartError,
    WireTap,
    mark_message,
    parse_start,
    serializer_for,
)
from bot.voice.processor import DialogueProcessor, TurnListener
from bot.voice.stt import LocalWhisperSTT
from bot.voice.timeline import CallTimeline

log = logging.getLogger(__name__)

#: Consecutive undecodable inbound messages after which the line counts as broken.
MAX_BAD_MESSAGES = 50


@dataclass
class VoiceCallResult:
    result: CallResult
    timeline: CallTimeline
    duration_s: float
    recording_path: Path | None = None
    said: list[BotUtterance] = field(default_factory=list)
    #: Each speech segment's transcript and decode seconds, in order.
    transcripts: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    @property
    def latencies_ms(self) -> list[float]:
        return self.timeline.latencies_ms()


@dataclass
class PendingCall:
    account: Account
    attempts_left: bool
    call_key: str
    result: asyncio.Future[VoiceCallResult]
    #: Live view: called with (role, topic, text, call seconds) as the call goes.
    on_turn: TurnListener | None = None


class CallBook:
    """Calls dialled and not yet connected, by ``call_key`` (one event loop's)."""

    def __init__(self) -> None:
        self._pending: dict[str, PendingCall] = {}

    def expect(
        self,
        account: Account,
        *,
        attempts_left: bool = True,
        on_turn: TurnListener | None = None,
    ) -> PendingCall:
        key = secrets.token_hex(12)
        call = PendingCall(
            account, attempts_left, key, asyncio.get_running_loop().create_future(), on_turn
        )
        self._pending[key] = call
        return call

    def take(self, call_key: str) -> PendingCall | None:
        return self._pending.pop(call_key, None)

    def discard(self, call_key: str) -> None:
        self._pending.pop(call_key, None)

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, call_key: object) -> bool:
        return call_key in self._pending


TtsFactory = Callable[[], FrameProcessor]


@dataclass
class VoiceStack:
    """What every call shares: loaded once per process."""

    investigator: Investigator
    transcriber: Transcriber
    tts_factory: TtsFactory
    settings: VoiceSettings = field(default_factory=VoiceSettings)
    provider: Provider = "loopback"
    recordings_dir: Path | None = None
    #: Per-call preparation run in a thread when the call connects (e.g. synthesising
    #: the account's own prompt clauses while the greeting plays).
    prepare: Callable[[Account], object] | None = None


class _LineState:
    """Health of the media stream, fed by the serializer's wire tap."""

    def __init__(self, timeline: CallTimeline) -> None:
        self.timeline = timeline
        self.last_inbound = timeline.now()
        self.inbound_packets = 0
        self.bad_in_a_row = 0
        self.bad_total = 0
        self.last_bad = ""

    def tap(self) -> WireTap:
        return WireTap(
            on_audio=self.timeline.audio_on_wire,
            on_clear=self.timeline.cleared,
            on_inbound=self._inbound,
            on_bad_message=self._bad,
        )

    def _inbound(self) -> None:
        self.inbound_packets += 1
        self.bad_in_a_row = 0
        self.last_inbound = self.timeline.now()

    def _bad(self, reason: str) -> None:
        self.bad_in_a_row += 1
        self.bad_total += 1
        self.last_bad = reason


async def _next_message(ws: WebSocket) -> object:
    """The next message as parsed JSON; refused when it is not JSON text."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise StreamStartError("the gateway hung up before 'start'", code=None)
    text = message.get("text")
    if not isinstance(text, str):
        raise StreamStartError(
            "binary frame: the media stream protocol is JSON text", CLOSE_UNSUPPORTED_DATA
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise StreamStartError(f"not JSON ({type(exc).__name__})", CLOSE_INVALID_PAYLOAD) from exc


async def read_start(ws: WebSocket, provider: Provider, timeout_s: float) -> StreamStart:
    """Skip the gateway's ``connected`` greeting and parse its ``start`` message.

    Raises :class:`StreamStartError` with the close code for whatever else arrives."""

    async def _read() -> StreamStart:
        while True:
            message = await _next_message(ws)
            if isinstance(message, dict) and message.get("event") in ("connected", "connected_ack"):
                continue
            return parse_start(provider, message)

    try:
        return await asyncio.wait_for(_read(), timeout_s)
    except TimeoutError as exc:
        raise StreamStartError(f"no 'start' message within {timeout_s:g} s") from exc
    except WebSocketDisconnect as exc:
        raise StreamStartError("the gateway hung up before 'start'", code=None) from exc


async def refuse(ws: WebSocket, problem: StreamStartError) -> None:
    """Close a refused stream with its close code and reason (if it is still open)."""
    log.warning("media stream refused (%s): %s", problem.code or "gone", problem)
    if problem.code is None:
        return
    with contextlib.suppress(Exception):  # it may have gone meanwhile
        await ws.close(code=problem.code, reason=problem.close_reason)


async def run_media_session(ws: WebSocket, stack: VoiceStack, book: CallBook) -> None:
    """Serve one gateway media-stream connection (the socket is already accepted)."""
    try:
        start = await read_start(ws, stack.provider, stack.settings.start_timeout_s)
        if not start.call_key:
            raise StreamStartError("the 'start' event carries no call_key parameter")
        pending = book.take(start.call_key)
        if pending is None:
            raise StreamStartError("unknown call: nobody dialled this call_key")
    except StreamStartError as exc:
        await refuse(ws, exc)
        return
    try:
        outcome = await _run_call(ws, start, stack, pending)
    except Exception as exc:  # last resort: the dialler must always get an answer
        log.exception("call session crashed")
        if not pending.result.done():
            pending.result.set_exception(exc)
        return
    if not pending.result.done():
        pending.result.set_result(outcome)


async def _run_call(
    ws: WebSocket, start: StreamStart, stack: VoiceStack, pending: PendingCall
) -> VoiceCallResult:
    cfg = stack.settings
    timeline = CallTimeline()
    line = _LineState(timeline)
    dm = stack.investigator.dialogue(pending.account)
    transport = FastAPIWebsocketTransport(
        ws,
        FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer_for(stack.provider, start, line.tap()),
        ),
    )
    stt = LocalWhisperSTT(stack.transcriber, trailing_silence_secs=cfg.trailing_silence_secs)
    dialogue = DialogueProcessor(
        dm,
        timeline,
        mark=lambda topic: mark_message(stack.provider, start, topic),
        vad_stop_secs=cfg.vad_stop_secs,
        segments_queued=lambda: stt.segments_queued,
        no_input_s=cfg.no_input_s,
        identity_hold_s=cfg.identity_hold_s,
        early_answer=cfg.early_answer,
        on_turn=pending.on_turn,
    )
    recorder = AudioBufferProcessor(
        sample_rate=PHONE_RATE, num_channels=2, auto_start_recording=cfg.record
    )
    recording: list[bytes] = []

    async def _keep_audio(_proc: Any, audio: bytes, _rate: int, _channels: int) -> None:
        recording.append(audio)

    recorder.add_event_handler("on_audio_data", _keep_audio)

    pipeline = Pipeline(
        [
            transport.input(),
            VADProcessor(
                vad_analyzer=SileroVADAnalyzer(
                    params=VADParams(
                        confidence=cfg.vad_confidence,
                        start_secs=cfg.vad_start_secs,
                        stop_secs=cfg.vad_stop_secs,
                        min_volume=cfg.vad_min_volume,
                    )
                )
            ),
            stt,
            UserTurnProcessor(
                user_turn_strategies=UserTurnStrategies(
                    start=[VADUserTurnStartStrategy()], stop=[_turn_stop(cfg)]
                )
            ),
            dialogue,
            stack.tts_factory(),
            transport.output(),
            recorder,
        ]
    )
    worker = PipelineWorker(
        pipeline,
        enable_rtvi=False,
        idle_timeout_secs=cfg.max_call_s,
        check_dangling_tasks=False,
        params=PipelineParams(audio_in_sample_rate=WHISPER_RATE, audio_out_sample_rate=PHONE_RATE),
    )
    ended_by_line: list[str] = []

    async def _line_dropped(_transport: Any, _ws: Any) -> None:
        dialogue.on_hangup()
        await worker.cancel()

    transport.add_event_handler("on_client_disconnected", _line_dropped)

    async def _watch_line() -> None:
        """Ends the call when the line is dead, garbled or over the time limit."""
        while True:
            await asyncio.sleep(0.25)
            now = timeline.now()
            problem = ""
            if line.bad_in_a_row >= MAX_BAD_MESSAGES:
                problem = f"undecodable media ({line.last_bad})"
            elif now - line.last_inbound >= cfg.media_timeout_s:
                problem = f"no media for {cfg.media_timeout_s:.0f} s"
            elif now >= cfg.max_call_s:
                problem = "call time limit"
            if problem:
                ended_by_line.append(problem)
                await worker.cancel()
                return

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    watcher = asyncio.create_task(_watch_line())
    preparing = (
        asyncio.create_task(_prepare(stack.prepare, pending.account))
        if stack.prepare is not None
        else None
    )
    error: str | None = None
    try:
        await runner.run()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.exception("pipeline failed")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        if preparing is not None:
            with contextlib.suppress(Exception):  # a cache miss later is only slower
                await preparing
        with contextlib.suppress(Exception):
            await ws.close()
    if ended_by_line and error is None:
        error = ended_by_line[0]
    _settle_outcome(dm.record, error)
    result = stack.investigator.conclude(
        pending.account, dm.record, attempts_left=pending.attempts_left, call_key=pending.call_key
    )
    path = _save_recording(stack, pending, b"".join(recording))
    return VoiceCallResult(
        result, timeline, timeline.now(), path, dialogue.said, stt.transcripts, error
    )


async def _prepare(prepare: Callable[[Account], object], account: Account) -> None:
    await asyncio.sleep(0.5)  # the greeting's first words go to the voice first
    await asyncio.to_thread(prepare, account)


def _turn_stop(cfg: VoiceSettings) -> BaseUserTurnStopStrategy:
    if cfg.turn_stop == "smart_turn":
        from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
        from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

        analyzer = LocalSmartTurnAnalyzerV3(
            params=SmartTurnParams(stop_secs=cfg.smart_turn_max_silence_s)
        )
        return TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)
    return SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=cfg.user_speech_timeout)


def _settle_outcome(record: DialogueRecord, error: str | None) -> None:
    """The outcome of a call whose dialogue did not reach an end by itself: a broken
    line or pipeline is a technical failure; otherwise the callee hung up."""
    if record.outcome is not None and record.ended_by != "callee_hangup":
        return
    if error is not None:
        record.outcome, record.ended_by = Outcome.FAILED, "line_failure"
    elif record.outcome is None:
        record.outcome, record.ended_by = Outcome.HUNG_UP, "callee_hangup"


def _save_recording(stack: VoiceStack, pending: PendingCall, audio: bytes) -> Path | None:
    if not (stack.settings.record and stack.recordings_dir and audio):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = stack.recordings_dir / f"{stamp}-{pending.call_key}.wav"
    write_wav(path, audio, PHONE_RATE, channels=2)
    return path
