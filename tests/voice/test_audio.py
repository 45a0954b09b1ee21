"""Phone-line audio helpers: codec, resampling, degradation, files, timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.voice.audio import (
    AudioError,
    degrade_for_phone,
    interleave,
    read_audio,
    resample,
    to_float,
    to_pcm,
    to_phone_line,
    ulaw_decode,
    ulaw_encode,
    write_wav,
)
from bot.voice.timeline import CallTimeline


def tone(seconds: float, rate: int, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_mu_law_round_trip_keeps_the_signal() -> None:
    pcm = to_pcm(tone(0.5, 8000))
    back = to_float(ulaw_decode(ulaw_encode(pcm)))
    assert len(ulaw_encode(pcm)) == len(pcm) // 2  # one byte per sample on the wire
    err = np.abs(back - to_float(pcm))
    assert err.max() < 0.03 and np.corrcoef(back, to_float(pcm))[0, 1] > 0.999


def test_phone_line_is_8k_mu_law() -> None:
    line = to_phone_line(tone(1.0, 24000), 24000)
    assert len(line) == 8000


def test_resample_changes_length_not_pitch() -> None:
    x = tone(1.0, 24000, hz=440)
    y = resample(x, 24000, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 440) < 2


def test_degradation_is_noisy_band_limited_and_deterministic() -> None:
    x = tone(1.0, 24000, hz=300)
    a = degrade_for_phone(x, 24000, snr_db=15, seed=1)
    b = degrade_for_phone(x, 24000, snr_db=15, seed=1)
    c = degrade_for_phone(x, 24000, snr_db=None)
    assert len(a) == 8000 and np.array_equal(a, b)
    noise = a - c
    snr = 10 * np.log10(np.mean(c**2) / np.mean(noise**2))
    assert 12 < snr < 18


def test_unreadable_audio_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00garbage" * 10)
    for path in (empty, garbage, tmp_path / "missing.wav"):
        with pytest.raises(AudioError, match=path.name):
            read_audio(path)
    silent = tmp_path / "zero.wav"
    write_wav(silent, b"", 8000)
    with pytest.raises(AudioError, match="no samples"):
        read_audio(silent)


def test_stereo_recording_pads_the_shorter_track(tmp_path: Path) -> None:
    left, right = to_pcm(tone(0.2, 8000)), to_pcm(tone(0.1, 8000))
    both = interleave(left, right)
    assert len(both) == 2 * len(left)
    path = tmp_path / "call.wav"
    write_wav(path, both, 8000, channels=2)
    data, rate = read_audio(path)
    assert rate == 8000 and len(data) == 1600
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


def test_timeline_turn_latency_and_far_end_playout() -> None:
    now = [100.0]
    tl = CallTimeline(clock=lambda: now[0])
    now[0] = 105.0
    tl.speech_ended(lag_s=0.25)  # VAD stopped 0.25 s after the callee did
    now[0] = 105.5
    tl.replied()
    now[0] = 105.6
    tl.audio_on_wire(0.02)
    tl.audio_on_wire(0.02)  # only the first byte of the reply counts
    assert tl.latencies_ms() == [850.0]
    assert tl.bot_audible() and tl.playout_end == pytest.approx(5.64)
    tl.cleared()
    assert not tl.bot_audible()
    tl.replied()  # an utterance not in reply to speech (e.g. after silence) is not timed
    assert len(tl.turns) == 1
