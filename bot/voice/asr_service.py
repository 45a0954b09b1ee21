"""One speech recognition service per process: segments of all calls, decoded in batches.

Every call's STT hands its speech segments to the process's :class:`AsrService` instead
of decoding them itself. The service screens a segment in the caller's thread (too
short, or no speech for the gate: answered at once), then queues it; one decoder thread
takes what is waiting, waiting up to ``wait_s`` after the oldest for company, groups
the segments by encoder window (:meth:`~bot.voice.asr.Transcriber.batch_key`: windows
are rounded to 2 s steps, so most answers share the 12 s one) and decodes each group,
``batch_size`` at most, in one CTranslate2 ``generate`` call. Each caller awaits its own
:class:`~concurrent.futures.Future`.

Hinted segments (the identity turn: a hotword prefix, a beam with several hypotheses,
timestamp mode and sometimes a second plain decode) and segments too long for one short
window are decoded alone, in their turn, through
:meth:`~bot.voice.asr.Transcriber.transcribe`: batching them would need one prompt per
segment and a per-batch beam, for one segment per call per identity question.

**Back-pressure.** Decoding more segments than the box can keep up with makes every call
slow. The service measures each segment's queue delay (enqueue to decode start) and
keeps the moving p95 over the last :data:`DELAY_WINDOW_S` (or, when longer, the age of
the oldest segment still waiting, so a stuck decoder counts at once). Past
``max_queue_delay_s`` :func:`hold_reason` says why new calls should wait, and the
campaign worker claims none (calls in progress go on) until the delay is back under
:data:`RESUME_FRACTION` of the bound. The figure is the metric
``callbot_asr_queue_delay_seconds``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from bot import metrics
from bot.voice.asr import DecodeHint, Transcript

log = logging.getLogger(__name__)

#: The queue delays one figure is computed over (s), and the quantile taken.
DELAY_WINDOW_S = 10.0
DELAY_QUANTILE = 95.0
#: Delays kept at most (the window's, on a very busy box).
MAX_DELAY_SAMPLES = 2000
#: Calls are held back above the bound and admitted again below this fraction of it.
RESUME_FRACTION = 0.5
#: Segments taken off the queue in one round, in batches of ``batch_size`` per window.
ROUND_BATCHES = 4


class Decoder(Protocol):
    """What the service needs of a recogniser (:class:`~bot.voice.asr.Transcriber`)."""

    def screen(self, samples: np.ndarray, rate: int = 16000) -> Transcript | None: ...

    def batch_key(self, samples: np.ndarray, hint: DecodeHint | None = None) -> float | None: ...

    def decode_batch(self, pieces: Sequence[np.ndarray]) -> list[Transcript]: ...

    def transcribe(
        self, samples: np.ndarray, rate: int = 16000, hint: DecodeHint | None = None
    ) -> Transcript: ...


@dataclass(frozen=True)
class BatchOptions:
    #: Segments decoded together at most (1: one at a time).
    batch_size: int = 8
    #: How long the oldest waiting segment waits for others to join its batch (s).
    wait_s: float = 0.015
    #: Queue delay (moving p95, s) above which new calls are held back; 0: never.
    max_queue_delay_s: float = 0.3


class QueueDelay:
    """The moving quantile of queue delays observed over the last ``window_s``."""

    def __init__(self, window_s: float = DELAY_WINDOW_S, quantile: float = DELAY_QUANTILE):
        self.window_s = window_s
        self.quantile = quantile
        self._samples: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=MAX_DELAY_SAMPLES
        )

    def observe(self, delay_s: float, now: float) -> None:
        self._samples.append((now, delay_s))

    def value(self, now: float) -> float:
        """The quantile of the delays observed in the window (0 when none were)."""
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()
        if not self._samples:
            return 0.0
        return float(np.percentile([d for _, d in self._samples], self.quantile))


class BackPressure:
    """Holds new calls back once the delay passes ``limit_s``, and lets them in again
    only once it is under ``RESUME_FRACTION`` of it (no flapping around the bound)."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.holding = False

    def update(self, delay_s: float) -> bool:
        """Whether new calls are held back, given the delay now."""
        if self.limit_s <= 0:
            return False
        if not self.holding and delay_s > self.limit_s:
            self.holding = True
        elif self.holding and delay_s < self.limit_s * RESUME_FRACTION:
            self.holding = False
        return self.holding


@dataclass(eq=False)
class _Request:
    samples: np.ndarray
    hint: DecodeHint | None
    #: The encoder window it can share a batch in; None: decoded alone.
    key: float | None
    enqueued: float
    future: Future[Transcript] = field(default_factory=Future)


class AsrService:
    """Batches the segments of all calls in front of one recogniser (see the module
    notes). Thread-safe; :meth:`close` stops the decoder thread."""

    def __init__(
        self,
        decoder: Decoder,
        options: BatchOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.decoder = decoder
        self.options = options or BatchOptions()
        self.clock = clock
        self.delays = QueueDelay()
        self.pressure = BackPressure(self.options.max_queue_delay_s)
        self._queue: collections.deque[_Request] = collections.deque()
        #: Enqueue time of the oldest segment taken off the queue but not started yet.
        self._round_oldest: float | None = None
        self._cond = threading.Condition()
        self._pressure_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="asr-batch", daemon=True)
        self._thread.start()

    # -- callers -------------------------------------------------------------------

    def submit(
        self, samples: np.ndarray, rate: int = 16000, hint: DecodeHint | None = None
    ) -> Future[Transcript]:
        """Screen the segment here, queue it for decoding; its transcript's future."""
        early = self.decoder.screen(samples, rate)
        if early is not None:
            done: Future[Transcript] = Future()
            done.set_result(early)
            return done
        samples = samples.astype(np.float32, copy=False)
        request = _Request(samples, hint, self.decoder.batch_key(samples, hint), self.clock())
        with self._cond:
            if self._closed:
                raise RuntimeError("the ASR service is closed")
            self._queue.append(request)
            self._cond.notify()
        return request.future

    def transcribe(
        self, samples: np.ndarray, rate: int = 16000, hint: DecodeHint | None = None
    ) -> Transcript:
        """The transcript of one segment (blocks until it is decoded)."""
        return self.submit(samples, rate, hint).result()

    async def transcribe_async(
        self, samples: np.ndarray, rate: int = 16000, hint: DecodeHint | None = None
    ) -> Transcript:
        """The same for a coroutine: the speech gate runs in a worker thread, the wait
        for the decode holds no thread."""
        future = await asyncio.to_thread(self.submit, samples, rate, hint)
        return await asyncio.wrap_future(future)

    # -- back-pressure -------------------------------------------------------------

    def queue_delay_s(self) -> float:
        """The moving p95 queue delay, or the oldest waiting segment's age if longer."""
        now = self.clock()
        with self._cond:
            waiting = [self._queue[0].enqueued] if self._queue else []
            if self._round_oldest is not None:
                waiting.append(self._round_oldest)
            delay = max([self.delays.value(now), *(now - t for t in waiting)])
        return delay

    def hold_reason(self) -> str | None:
        """Why new calls should wait now (the queue delay over its bound), or None."""
        delay = self.queue_delay_s()
        holding = self._update_pressure(delay)
        if not holding:
            return None
        return f"ASR queue {delay * 1000:.0f} ms > {self.options.max_queue_delay_s * 1000:.0f} ms"

    def _update_pressure(self, delay: float) -> bool:
        with self._pressure_lock:
            was = self.pressure.holding
            holding = self.pressure.update(delay)
        metrics.asr_queue(delay, holding)
        if holding != was:
            log.warning(
                "ASR queue delay %.0f ms: %s new calls",
                delay * 1000,
                "holding back" if holding else "taking again",
            )
        return holding

    # -- the decoder thread ----------------------------------------------------------

    def close(self) -> None:
        """Decode what is queued, then stop the decoder thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            self._decode(_units(taken, self.options.batch_size))

    def _take(self) -> list[_Request] | None:
        """What is waiting, after up to ``wait_s`` for a batch to fill; None when closed."""
        o = self.options
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = self._queue[0].enqueued + o.wait_s
            while o.batch_size > 1 and len(self._queue) < o.batch_size and not self._closed:
                left = deadline - self.clock()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(len(self._queue), o.batch_size * ROUND_BATCHES)
            taken = [self._queue.popleft() for _ in range(n)]
            self._round_oldest = taken[0].enqueued
            return taken

    def _decode(self, units: list[list[_Request]]) -> None:
        for i, unit in enumerate(units):
            start = self.clock()
            with self._cond:
                for r in unit:
                    self.delays.observe(start - r.enqueued, start)
                later = [r.enqueued for u in units[i + 1 :] for r in u]
                self._round_oldest = min(later) if later else None
            self._update_pressure(self.queue_delay_s())
            metrics.asr_batch(len(unit))
            try:
                if unit[0].key is None:
                    r = unit[0]
                    results = [self.decoder.transcribe(r.samples, 16000, r.hint)]
                else:
                    results = self.decoder.decode_batch([r.samples for r in unit])
            except Exception as exc:  # each caller gets the error; the service goes on
                for r in unit:
                    r.future.set_exception(exc)
                continue
            for r, result in zip(unit, results, strict=True):
                r.future.set_result(result)


def _units(taken: list[_Request], batch_size: int) -> list[list[_Request]]:
    """The decodes of one round, oldest first: the segments of one window in batches of
    at most ``batch_size``; each segment that cannot share a batch alone."""
    units: list[list[_Request]] = []
    open_batch: dict[float, list[_Request]] = {}
    for r in taken:  # taken in arrival order
        if r.key is None:
            units.append([r])
            continue
        batch = open_batch.get(r.key)
        if batch is None or len(batch) >= batch_size:
            batch = open_batch[r.key] = []
            units.append(batch)
        batch.append(r)
    return units


_services: dict[int, AsrService] = {}
_services_lock = threading.Lock()


def start_service(decoder: Decoder, options: BatchOptions | None = None) -> AsrService:
    """The process's service in front of ``decoder`` (started on the first call; later
    calls return it, whatever their options)."""
    with _services_lock:
        service = _services.get(id(decoder))
        if service is None or service.decoder is not decoder:
            service = _services[id(decoder)] = AsrService(decoder, options)
        return service


def service_for(decoder: object) -> AsrService | None:
    """The running service in front of ``decoder``, if one was started."""
    with _services_lock:
        service = _services.get(id(decoder))
    return service if service is not None and service.decoder is decoder else None


def hold_reason() -> str | None:
    """Why this process should take no new calls now (an ASR queue over its bound), or
    None: the campaign worker's admission check."""
    with _services_lock:
        services = list(_services.values())
    for service in services:
        reason = service.hold_reason()
        if reason is not None:
            return reason
    return None
