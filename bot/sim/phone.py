"""A simulated callee on a real media stream: the far side of the loopback gateway.

It connects to the bot's media WebSocket and speaks the Twilio Media Streams protocol
exactly as Twilio does (``connected``, ``start`` with our ``call_key`` parameter, a
``media`` message of 20 ms of 8 kHz mu-law every 20 ms whether anyone talks or not,
``dtmf``, ``mark`` echoes, ``stop``). It plays what the bot sends into a virtual
loudspeaker (tracking when the audio it has buffered will have finished playing, and
dropping it on ``clear``), and answers each prompt by the topic in the bot's ``mark``
message, with the persona's recording for that topic (``default`` for others, silence
where there is none), a moment after the prompt has finished playing.

Scripted behaviours cover what real callees do: stay silent, talk over the bot,
press keys, hang up, and (for fault tests) drop the socket, never send ``start`` or
send garbage. It also measures, from its side of the line, each turn's latency: from
the end of its speech to the first byte of bot audio that follows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from bot.core.vocab import Topic
from bot.voice.audio import PHONE_RATE, read_audio, to_phone_line, ulaw_decode

FRAME_S = 0.02
FRAME_BYTES = int(PHONE_RATE * FRAME_S)  # mu-law: one byte per sample
ULAW_SILENCE = b"\xff" * FRAME_BYTES
QUESTION_TOPICS = frozenset(t.value for t in Topic) - {Topic.DEFAULT.value}


@dataclass(frozen=True)
class Clip:
    """One answer: its text (the CER reference) and its audio on the phone line."""

    text: str
    ulaw: bytes

    @classmethod
    def from_file(cls, text: str, path: Path) -> Clip:
        samples, rate = read_audio(path)
        return cls(text, to_phone_line(samples, rate))

    @property
    def voiced_s(self) -> float:
        """Where the speech in the clip ends (trailing silence excluded)."""
        pcm = np.frombuffer(ulaw_decode(self.ulaw), dtype="<i2").astype(np.float32)
        frames = pcm[: pcm.size - pcm.size % FRAME_BYTES].reshape(-1, FRAME_BYTES)
        if frames.size == 0:
            return 0.0
        rms = np.sqrt((frames**2).mean(axis=1))
        loud = np.nonzero(rms > max(300.0, 0.05 * rms.max()))[0]
        return float((loud[-1] + 1) * FRAME_S) if loud.size else 0.0


@dataclass
class Behaviour:
    """How the callee acts beyond answering by topic."""

    #: Pause between the end of a prompt and the start of the answer.
    reaction_s: float = 0.4
    #: Prompt number (0 = the greeting) -> seconds into it at which to talk over it.
    barge_in: Mapping[int, float] = field(default_factory=dict)
    #: What to say when talking over a prompt (None: the topic's own answer).
    barge_in_clip: Clip | None = None
    #: Topic -> keys to press instead of speaking.
    dtmf: Mapping[str, str] = field(default_factory=dict)
    #: Hang up (``stop``, then close) when a prompt of this topic has played.
    hang_up_on: str | None = None
    #: Fault injection: close the socket without ``stop`` after this many seconds.
    drop_after_s: float | None = None
    #: Fault injection: never send ``start`` / send undecodable media / send no media.
    skip_start: bool = False
    garbage_media: bool = False
    mute_line: bool = False
    #: Give up (hang up) after this long whatever happens.
    max_call_s: float = 600.0


@dataclass
class HeardTurn:
    """One answer the callee gave, timed on its side of the line (call seconds)."""

    topic: str
    text: str
    started: float
    speech_end: float
    first_reply_audio: float | None = None
    barged_in: bool = False

    @property
    def latency_ms(self) -> float | None:
        if self.first_reply_audio is None or self.barged_in:
            return None
        return round((self.first_reply_audio - self.speech_end) * 1000.0, 1)


@dataclass
class CalleeLog:
    marks: list[str] = field(default_factory=list)
    turns: list[HeardTurn] = field(default_factory=list)
    clears: int = 0
    bot_audio_s: float = 0.0
    hung_up: bool = False
    closed_by_bot: bool = False
    error: str | None = None

    def latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.turns if t.latency_ms is not None]

    def reference_text(self) -> str:
        """Everything the callee said (the reference for the callee CER)."""
        return "".join(t.text for t in self.turns if t.text)


class PhoneCallee:
    """One simulated callee for one call (``await callee.run(url, call_key)``)."""

    def __init__(self, answers: Mapping[str, Clip | None], behaviour: Behaviour | None = None):
        self.answers = answers
        self.behaviour = behaviour or Behaviour()
        self.log = CalleeLog()
        self._out = bytearray()  # mu-law waiting to be "spoken"
        self._speaking: HeardTurn | None = None
        self._speech_end_at: float | None = None
        self._prompts = 0
        self._playout_end = 0.0
        self._last_bot_audio = -1.0
        self._t0 = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def answer_for(self, topic: str) -> Clip | None:
        key = topic if topic in QUESTION_TOPICS else Topic.DEFAULT.value
        return self.answers.get(key)

    def _now(self) -> float:
        return time.monotonic() - self._t0

    # -- the call ----------------------------------------------------------------------

    async def run(self, url: str, call_key: str) -> CalleeLog:
        self._t0 = time.monotonic()
        stream_sid = "MZ" + secrets.token_hex(16)
        call_sid = "CA" + secrets.token_hex(16)
        try:
            async with websockets.connect(url, max_size=2**22, open_timeout=10) as ws:
                await ws.send(
                    json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
                )
                if not self.behaviour.skip_start:
                    await ws.send(json.dumps(_start_message(stream_sid, call_sid, call_key)))
                sender = asyncio.create_task(self._send_loop(ws, stream_sid, call_sid))
                try:
                    await asyncio.wait_for(
                        self._receive_loop(ws, stream_sid), self.behaviour.max_call_s
                    )
                except TimeoutError:
                    self.log.hung_up = True
                finally:
                    sender.cancel()
                    for t in list(self._tasks):
                        t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                        await sender
        except (OSError, websockets.WebSocketException) as exc:
            self.log.error = f"{type(exc).__name__}: {exc}"
        return self.log

    async def _receive_loop(self, ws: websockets.ClientConnection, stream_sid: str) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    self._on_bot_audio(base64.b64decode(message["media"]["payload"]))
                elif event == "mark":
                    await self._on_mark(ws, stream_sid, message["mark"]["name"])
                elif event == "clear":
                    self.log.clears += 1
                    self._playout_end = self._now()
                if self.log.hung_up:
                    return
        except websockets.ConnectionClosed:
            pass
        if not self.log.hung_up:
            self.log.closed_by_bot = True

    def _on_bot_audio(self, ulaw: bytes) -> None:
        now = self._now()
        duration = len(ulaw) / PHONE_RATE
        if self._playout_end <= now:  # silence before: a new prompt starts playing
            self._prompts += 1
            delay = self.behaviour.barge_in.get(self._prompts - 1)
            if delay is not None:
                self._later(delay, self._barge_in())
        self._playout_end = max(self._playout_end, now) + duration
        self._last_bot_audio = now
        self.log.bot_audio_s += duration
        turn = self.log.turns[-1] if self.log.turns else None
        if (
            turn is not None
            and turn.first_reply_audio is None
            and self._speaking is None
            and now >= turn.speech_end
        ):
            turn.first_reply_audio = now

    async def _on_mark(self, ws: websockets.ClientConnection, stream_sid: str, topic: str) -> None:
        self.log.marks.append(topic)
        echo = {"event": "mark", "streamSid": stream_sid, "mark": {"name": topic}}
        # Twilio echoes a mark when the audio before it has played (or was cleared)
        self._after_playout(0.0, ws.send(json.dumps(echo)))
        b = self.behaviour
        if b.hang_up_on == topic:
            self._after_playout(b.reaction_s, self._hang_up(ws, stream_sid))
        elif topic in b.dtmf:
            self._after_playout(b.reaction_s, self._press(ws, stream_sid, b.dtmf[topic]))
        else:
            clip = self.answer_for(topic)
            if clip is not None:
                self._after_playout(b.reaction_s, self._speak(topic, clip))

    # -- actions -----------------------------------------------------------------------

    def _later(self, delay: float, action: Coroutine[Any, Any, Any]) -> None:
        self._run_after(lambda: asyncio.sleep(delay), action)

    def _after_playout(self, reaction_s: float, action: Coroutine[Any, Any, Any]) -> None:
        """Run ``action`` ``reaction_s`` after the bot audio buffered so far has played
        (a ``clear`` meanwhile ends the wait at once)."""

        async def wait() -> None:
            while (left := self._playout_end - self._now()) > 0:
                await asyncio.sleep(min(left, 0.05))
            await asyncio.sleep(reaction_s)

        self._run_after(wait, action)

    def _run_after(
        self, wait: Callable[[], Awaitable[None]], action: Coroutine[Any, Any, Any]
    ) -> None:
        async def run() -> None:
            try:
                await wait()
            except asyncio.CancelledError:
                action.close()  # never started: not an error, just the call ending
                raise
            with contextlib.suppress(websockets.ConnectionClosed):  # the line went meanwhile
                await action

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _speak(self, topic: str, clip: Clip, *, barged_in: bool = False) -> None:
        if self._speaking is not None:
            return  # already talking
        now = self._now()
        turn = HeardTurn(topic, clip.text, now, now + clip.voiced_s, barged_in=barged_in)
        self.log.turns.append(turn)
        self._speaking = turn
        self._out.extend(clip.ulaw)

    async def _barge_in(self) -> None:
        clip = self.behaviour.barge_in_clip or self.answer_for(Topic.DEFAULT.value)
        if clip is not None:
            await self._speak("barge_in", clip, barged_in=True)

    async def _press(self, ws: websockets.ClientConnection, stream_sid: str, keys: str) -> None:
        for digit in keys:
            await ws.send(
                json.dumps(
                    {
                        "event": "dtmf",
                        "streamSid": stream_sid,
                        "dtmf": {"track": "inbound_track", "digit": digit},
                    }
                )
            )
            await asyncio.sleep(0.15)
        now = self._now()
        self.log.turns.append(HeardTurn("dtmf", "", now, now))

    async def _hang_up(self, ws: websockets.ClientConnection, stream_sid: str) -> None:
        self.log.hung_up = True
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps({"event": "stop", "streamSid": stream_sid, "stop": {}}))
            await ws.close()

    async def _send_loop(
        self, ws: websockets.ClientConnection, stream_sid: str, call_sid: str
    ) -> None:
        """One 20 ms media message per 20 ms, on an absolute schedule (no drift)."""
        b = self.behaviour
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while True:
            n += 1
            if b.drop_after_s is not None and n * FRAME_S >= b.drop_after_s:
                self.log.hung_up = True
                await ws.close()  # no 'stop': the line just goes
                return
            chunk = bytes(self._out[:FRAME_BYTES])
            del self._out[:FRAME_BYTES]
            if self._speaking is not None and not self._out:
                self._speaking = None
            if not b.mute_line:
                payload = (
                    "%%not-base64%%"
                    if b.garbage_media
                    else base64.b64encode(chunk.ljust(FRAME_BYTES, b"\xff")).decode()
                )
                await ws.send(
                    json.dumps(
                        {
                            "event": "media",
                            "sequenceNumber": str(n + 2),
                            "media": {
                                "track": "inbound",
                                "chunk": str(n),
                                "timestamp": str(int(n * 20)),
                                "payload": payload,
                            },
                            "streamSid": stream_sid,
                        }
                    )
                )
            await asyncio.sleep(max(0.0, start + n * FRAME_S - loop.time()))


def _start_message(stream_sid: str, call_sid: str, call_key: str) -> dict[str, object]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": stream_sid,
        "start": {
            "accountSid": "AC" + "0" * 32,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": PHONE_RATE, "channels": 1},
            "customParameters": {"call_key": call_key},
        },
    }


def persona_clips(
    answers: Mapping[str, str | None], audio_dir: Path, suffix: str = ".wav"
) -> dict[str, Clip | None]:
    """The persona contract: ``<audio_dir>/<topic><suffix>`` for each answer with text;
    a missing file is silence. Unreadable audio raises :class:`~bot.voice.audio.AudioError`."""
    clips: dict[str, Clip | None] = {}
    for topic, text in answers.items():
        path = audio_dir / f"{topic}{suffix}"
        clips[topic] = Clip.from_file(text, path) if text and path.is_file() else None
    return clips
