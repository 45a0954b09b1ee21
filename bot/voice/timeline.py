"""Per-call timing: when the callee stopped talking, when the bot's answer hit the wire.

Turn latency (issue 3) is measured from the end of the callee's speech to the first byte
of bot audio on the wire. The end of speech is the VAD's stop event minus the silence it
waited for (``stop_secs``); the first byte is stamped by the serializer as it hands the
first media message of the reply to the socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot import metrics


@dataclass
class TurnTiming:
    #: Seconds since the call started.
    speech_end: float
    replied: float | None = None
    first_audio: float | None = None
    #: Index in the dialogue record of the bot turn that answered.
    turn_index: int | None = None

    @property
    def latency_ms(self) -> float | None:
        if self.first_audio is None:
            return None
        return round((self.first_audio - self.speech_end) * 1000.0, 1)


@dataclass
class CallTimeline:
    clock: Callable[[], float] = time.monotonic
    t0: float = field(default=0.0)
    turns: list[TurnTiming] = field(default_factory=list)
    _speech_end: float | None = None
    _pending: TurnTiming | None = None
    #: When the bot audio already sent will have finished playing at the far end
    #: (gateways buffer: pipecat sends faster than real time).
    playout_end: float = 0.0

    def __post_init__(self) -> None:
        if not self.t0:
            self.t0 = self.clock()

    def now(self) -> float:
        """Seconds since the call started."""
        return self.clock() - self.t0

    def speech_ended(self, lag_s: float = 0.0) -> None:
        """The VAD saw the callee stop ``lag_s`` seconds ago."""
        self._speech_end = max(0.0, self.now() - lag_s)

    def replied(self) -> TurnTiming | None:
        """The dialogue answers the callee's turn; the next audio on the wire closes it."""
        if self._speech_end is None:
            return None
        self._pending = TurnTiming(self._speech_end, replied=self.now())
        self.turns.append(self._pending)
        self._speech_end = None
        return self._pending

    def audio_on_wire(self, duration_s: float) -> None:
        now = self.now()
        if self._pending is not None:
            self._pending.first_audio = now
            metrics.turn_answered(self._pending.latency_ms)
            self._pending = None
        self.playout_end = max(self.playout_end, now) + duration_s

    def cleared(self) -> None:
        """The gateway was told to drop the audio it still buffers (barge-in)."""
        self.playout_end = self.now()

    def bot_audible(self) -> bool:
        return self.now() < self.playout_end

    def latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.turns if t.latency_ms is not None]

    def by_turn(self) -> dict[int, float]:
        """Latency of each answering bot turn, by its index in the dialogue record."""
        return {
            t.turn_index: t.latency_ms
            for t in self.turns
            if t.turn_index is not None and t.latency_ms is not None
        }
