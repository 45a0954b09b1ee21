"""Whisper through the shared transcriber: the short-window decode hears what the long
one hears, noise gives nothing, long segments still work (real model, real audio)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.settings import Settings
from bot.speech import cer
from bot.voice.asr import Transcriber
from bot.voice.audio import degrade_for_phone, read_audio, resample
from tests.voice.conftest import AUDIO, _need

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    model = Settings().whisper_path
    _need(model / "model.bin", "Whisper base (bot models install)")
    return Transcriber(model)


def phone(name: str) -> np.ndarray:
    samples, rate = read_audio(AUDIO / name)
    return resample(degrade_for_phone(samples, rate), 8000, 16000)


def test_a_phone_answer_is_heard(transcriber: Transcriber) -> None:
    got = transcriber.transcribe(phone("p02_lent_to_friend/fund_source.wav"))
    assert cer("这些钱不是我的，是我朋友的货款", got.text) < 0.15
    assert got.text == got.text.strip() and "這" not in got.text  # folded to Simplified
    assert got.seconds > 0  # decode time is recorded (its percentiles: bench/voice_bench.py)


@pytest.mark.parametrize("level", [0.003, 0.01, 0.03, 0.1])
def test_noise_and_silence_give_no_text(transcriber: Transcriber, level: float) -> None:
    noise = np.random.default_rng(0).normal(0, level, 32000).astype(np.float32)
    assert transcriber.transcribe(noise).text == ""
    assert transcriber.transcribe(np.zeros(800, dtype=np.float32)).text == ""
    assert transcriber.transcribe(np.zeros(32000, dtype=np.float32)).text == ""


def test_the_speech_gate_lets_a_quiet_short_answer_through(transcriber: Transcriber) -> None:
    quiet = 0.15 * phone("p01_salary_owner/identity.wav")
    assert transcriber.transcribe(quiet).text != ""


def test_segments_longer_than_the_short_window_use_whisper_windows(
    transcriber: Transcriber,
) -> None:
    parts = [
        phone(f"p0{i}_{n}/card_custody.wav")
        for i, n in [(1, "salary_owner"), (2, "lent_to_friend")]
    ]
    long = np.concatenate(parts * 3)  # about 32 s
    got = transcriber.transcribe(long)
    assert got.audio_s > 28 and "借给朋友" in got.text


def test_only_16k_audio_is_accepted(transcriber: Transcriber) -> None:
    with pytest.raises(ValueError, match="16 kHz"):
        transcriber.transcribe(np.zeros(8000, dtype=np.float32), rate=8000)
