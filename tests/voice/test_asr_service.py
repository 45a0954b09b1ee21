"""The ASR service: segments of several calls are batched by encoder window and each
caller gets its own text; the queue delay holds new calls back with hysteresis; the
worker claims nothing while held. A slow test decodes two real answers in one batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from bot.campaign.worker import PlacedCall, SimulatedGateway, Worker
from bot.core.account import Account
from bot.core.investigation import Investigator
from bot.voice.asr import DecodeHint, Transcript, encoder_window
from bot.voice.asr_service import (
    RESUME_FRACTION,
    AsrService,
    BackPressure,
    BatchOptions,
    QueueDelay,
    start_service,
)

RATE = 16000


def segment(ident: int, seconds: float) -> np.ndarray:
    """A fake segment whose samples all carry its id (the fake decoder reads it back)."""
    return np.full(int(seconds * RATE), float(ident), dtype=np.float32)


def text_of(samples: np.ndarray) -> str:
    return f"seg{int(samples[0])}"


class FakeDecoder:
    """Records what is decoded how; ``hold`` keeps the first solo decode waiting."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.solo: list[str] = []
        self.hold = threading.Event()
        self.busy = threading.Event()
        self.hold.set()

    def screen(self, samples: np.ndarray, rate: int = RATE) -> Transcript | None:
        return Transcript("", "", samples.size / rate, 0.0) if samples.size < RATE // 10 else None

    def batch_key(self, samples: np.ndarray, hint: DecodeHint | None = None) -> float | None:
        return None if hint is not None else encoder_window(samples.size / RATE)

    def decode_batch(self, pieces: Sequence[np.ndarray]) -> list[Transcript]:
        self.batches.append([text_of(p) for p in pieces])
        return [Transcript(text_of(p), text_of(p), p.size / RATE, 0.1) for p in pieces]

    def transcribe(
        self, samples: np.ndarray, rate: int = RATE, hint: DecodeHint | None = None
    ) -> Transcript:
        self.busy.set()
        self.hold.wait(10)
        self.solo.append(text_of(samples))
        return Transcript(text_of(samples), "", samples.size / rate, 0.1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def decoder() -> FakeDecoder:
    return FakeDecoder()


@pytest.fixture
def service(decoder: FakeDecoder) -> Iterator[AsrService]:
    s = AsrService(decoder, BatchOptions(batch_size=3, wait_s=0.0, max_queue_delay_s=0.3))
    yield s
    decoder.hold.set()
    s.close()


def busy_decoder(service: AsrService, decoder: FakeDecoder) -> None:
    """Keep the decoder thread busy on a hinted (solo) segment, so that what is
    submitted next waits in the queue and is taken in one round."""
    decoder.hold.clear()
    service.submit(segment(99, 1.0), hint=DecodeHint(hotwords="张伟"))
    assert decoder.busy.wait(10)


def test_segments_are_batched_by_window_and_each_caller_gets_its_own_text(
    service: AsrService, decoder: FakeDecoder
) -> None:
    busy_decoder(service, decoder)
    lengths = {1: 2.0, 2: 5.0, 3: 14.0, 4: 9.0, 5: 3.0, 6: 1.0}  # 3 is in a 16 s window
    futures = {i: service.submit(segment(i, s)) for i, s in lengths.items()}
    hinted = service.submit(segment(7, 2.0), hint=DecodeHint(hypotheses=3))
    short = service.submit(segment(8, 0.05))
    assert short.result(10).text == ""  # screened: answered without waiting
    decoder.hold.set()

    for i, f in futures.items():
        assert f.result(10).text == f"seg{i}"
    assert hinted.result(10).text == "seg7"
    # In arrival order, at most three of one window per decode; the hinted one alone.
    assert decoder.batches == [["seg1", "seg2", "seg4"], ["seg3"], ["seg5", "seg6"]]
    assert decoder.solo == ["seg99", "seg7"]


def test_a_failed_batch_fails_its_callers_and_the_service_goes_on(
    service: AsrService, decoder: FakeDecoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(pieces: Sequence[np.ndarray]) -> list[Transcript]:
        raise RuntimeError("decoder fell over")

    monkeypatch.setattr(decoder, "decode_batch", broken)
    with pytest.raises(RuntimeError, match="fell over"):
        service.submit(segment(1, 2.0)).result(10)
    monkeypatch.undo()
    assert service.submit(segment(2, 2.0)).result(10).text == "seg2"


def test_back_pressure_holds_and_releases_with_hysteresis() -> None:
    bp = BackPressure(0.3)
    below_resume = 0.3 * RESUME_FRACTION - 0.01
    seen = [bp.update(d) for d in (0.1, 0.29, 0.31, 0.2, below_resume + 0.02, below_resume, 0.2)]
    assert seen == [False, False, True, True, True, False, False]
    assert BackPressure(0.0).update(10.0) is False  # 0: never holds


def test_queue_delay_is_a_moving_p95_over_its_window() -> None:
    q = QueueDelay(window_s=10.0)
    for i in range(100):
        q.observe(0.01 if i < 90 else 1.0, now=float(i) / 10)
    assert 0.5 < q.value(now=10.0) <= 1.0  # the slowest 10 % set the p95
    assert q.value(now=21.0) == 0.0  # nothing observed in the last 10 s


def test_the_service_holds_new_calls_while_segments_wait_and_releases_later(
    decoder: FakeDecoder,
) -> None:
    clock = Clock()
    service = AsrService(decoder, BatchOptions(wait_s=0.0, max_queue_delay_s=0.3), clock=clock)
    try:
        assert service.hold_reason() is None
        busy_decoder(service, decoder)
        waiting = service.submit(segment(1, 2.0))
        clock.now += 0.5  # it has waited 500 ms behind the busy decoder
        reason = service.hold_reason()
        assert reason is not None and "500 ms > 300 ms" in reason
        assert REGISTRY.get_sample_value("callbot_asr_holding_new_calls") == 1
        decoder.hold.set()
        assert waiting.result(10).text == "seg1"
        assert service.hold_reason() is not None  # its 500 ms wait is in the p95 now
        clock.now += 11  # no segment in the last 10 s
        assert service.hold_reason() is None
        assert REGISTRY.get_sample_value("callbot_asr_holding_new_calls") == 0
        assert REGISTRY.get_sample_value("callbot_asr_queue_delay_seconds") == 0
    finally:
        decoder.hold.set()
        service.close()


def test_one_service_per_decoder(decoder: FakeDecoder) -> None:
    first = start_service(decoder)
    try:
        assert start_service(decoder, BatchOptions(batch_size=1)) is first
        assert start_service(FakeDecoder()) is not first
    finally:
        first.close()


# -- the worker takes no new call while held ------------------------------------------


class CountingGateway(SimulatedGateway):
    def __init__(self, holds: list[int]) -> None:
        super().__init__({})
        self.holds = holds
        self.placed_after: list[int] = []

    def place(
        self, investigator: Investigator, account: Account, *, attempts_left: bool
    ) -> PlacedCall:
        self.placed_after.append(len(self.holds))
        return super().place(investigator, account, attempts_left=attempts_left)


def test_the_worker_claims_nothing_while_held(engine: Engine) -> None:
    from bot.runtime import build_investigator
    from bot.settings import Settings
    from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign

    make_campaign(engine, "held", n=2, max_attempts=1)
    asked: list[int] = []

    def hold() -> str | None:
        asked.append(1)
        return "ASR queue 500 ms > 300 ms" if len(asked) <= 3 else None

    gateway = CountingGateway(asked)
    worker = Worker(
        engine,
        build_investigator(Settings(intent_model_enabled=False)),
        gateway,
        poll_s=0.01,
        clock=lambda: MONDAY_10_LOCAL,
        hold=hold,
    )
    worker.held = "ASR queue 500 ms > 300 ms"
    assert "new calls held: ASR queue 500 ms" in worker.status()
    stats = worker.run(until_idle=True)
    assert stats.calls == 2
    assert min(gateway.placed_after) > 3  # none while the hold said so


# -- the real model -----------------------------------------------------------------


@pytest.mark.slow
def test_two_real_answers_decoded_in_one_batch_read_as_one_by_one() -> None:
    from bot.settings import Settings
    from bot.voice.asr import Transcriber
    from bot.voice.audio import degrade_for_phone, read_audio, resample
    from tests.voice.conftest import AUDIO, _need

    model = Settings().whisper_path
    _need(model / "model.bin", "Whisper base (bot models install)")
    clips = []
    for name in ("p02_lent_to_friend/fund_source.wav", "p01_salary_owner/occupation.wav"):
        samples, rate = read_audio(AUDIO / name)
        clips.append(resample(degrade_for_phone(samples, rate), 8000, 16000))
    transcriber = Transcriber(model)
    alone = [transcriber.transcribe(c).text for c in clips]
    sizes: list[int] = []
    decode_batch = transcriber.decode_batch

    def counted(pieces: Sequence[np.ndarray]) -> list[Transcript]:
        sizes.append(len(pieces))
        return decode_batch(pieces)

    transcriber.decode_batch = counted  # type: ignore[method-assign]
    service = AsrService(transcriber, BatchOptions(batch_size=2, wait_s=5.0))
    try:
        futures = [service.submit(c) for c in clips]
        together = [f.result(60).text for f in futures]
    finally:
        service.close()
    assert sizes == [2]
    assert together == alone and all(alone)
