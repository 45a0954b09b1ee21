"""The simulated phone line: each degradation does what it says, and all are seeded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bot.sim.line import (
    FRAME,
    SILENCE_BYTE,
    LineEffects,
    LineProfile,
    apply,
    band_limit,
    decode,
    degrade,
    draw,
    drop_frames,
    encode,
    speech_onset,
)
from bot.voice.audio import PHONE_RATE, to_pcm

RATE = 24000


def tone(seconds: float, hz: float = 1000.0, rate: int = RATE, lead_s: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.concatenate([np.zeros(int(lead_s * rate), np.float32), x])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_the_same_seed_gives_the_same_clip_and_another_seed_another() -> None:
    x = tone(1.0)
    a, ea = degrade(x, RATE, seed=3)
    b, eb = degrade(x, RATE, seed=3)
    c, ec = degrade(x, RATE, seed=4)
    assert ea == eb and np.array_equal(a, b)
    assert ec != ea and not np.array_equal(a[: c.size], c[: a.size])


def test_output_is_8k_g711_codewords_that_survive_a_g711_wav_file(tmp_path: Path) -> None:
    for seed in range(6):
        y, effects = degrade(tone(0.5), RATE, seed=seed)
        assert y.size == 4000 - int(PHONE_RATE * effects.clip_start_ms / 1000)
        words = encode(to_pcm(y), effects.codec)
        path = tmp_path / f"{seed}.wav"
        sf.write(path, y, PHONE_RATE, subtype=effects.codec.upper())
        back, rate = sf.read(path, dtype="float32")
        assert rate == PHONE_RATE and encode(to_pcm(back), effects.codec) == words
    assert {draw(LineProfile(), 50, s).codec for s in range(20)} == {"alaw", "ulaw"}


def test_a_law_and_mu_law_are_different_codecs() -> None:
    pcm = to_pcm(tone(0.1, rate=PHONE_RATE) * 0.01)  # quiet: where the two laws differ most
    assert decode(encode(pcm, "alaw"), "alaw") != decode(encode(pcm, "ulaw"), "ulaw")
    assert encode(b"\x00\x00", "alaw") == bytes([SILENCE_BYTE["alaw"]])
    assert encode(b"\x00\x00", "ulaw") == bytes([SILENCE_BYTE["ulaw"]])


def test_band_limit_removes_hum_and_keeps_speech_band() -> None:
    hum = tone(1.0, hz=50.0, rate=PHONE_RATE)
    voice = tone(1.0, hz=1000.0, rate=PHONE_RATE)
    assert rms(band_limit(hum)) < 0.01 * rms(hum)
    assert rms(band_limit(voice)) == pytest.approx(rms(voice), rel=0.02)


def test_gain_is_relative_to_full_scale_whatever_the_input_level() -> None:
    quiet, loud = tone(0.5, rate=PHONE_RATE) * 0.05, tone(0.5, rate=PHONE_RATE)
    effects = LineEffects(codec="ulaw", gain_db=-12.0)
    a, b = apply(quiet, effects), apply(loud, effects)
    assert rms(a) == pytest.approx(rms(b), rel=0.02)
    assert rms(apply(loud, dataclasses.replace(effects, gain_db=-6.0))) == pytest.approx(
        2 * rms(b), rel=0.05
    )


def test_level_step_changes_the_level_after_its_point() -> None:
    x = tone(1.0, rate=PHONE_RATE)
    y = apply(x, LineEffects(gain_db=-6.0, level_step=(0.5, -12.0)))
    first, second = rms(y[: y.size // 2 - 80]), rms(y[y.size // 2 + 80 :])
    assert 20 * np.log10(second / first) == pytest.approx(-12.0, abs=0.5)


def test_clipped_start_cuts_the_first_milliseconds_of_speech_not_the_lead_silence() -> None:
    x = tone(1.0, rate=PHONE_RATE, lead_s=0.3)
    assert speech_onset(x) == pytest.approx(0.3 * PHONE_RATE, abs=FRAME)
    y = apply(x, LineEffects(clip_start_ms=100.0))
    assert y.size == x.size - speech_onset(x) - 800
    assert rms(y[:FRAME]) > 0.1  # starts in the middle of the speech


def test_noise_is_at_the_snr_asked_for() -> None:
    x = tone(2.0, rate=PHONE_RATE)
    clean = apply(x, LineEffects(gain_db=-6.0))
    noisy = apply(x, LineEffects(gain_db=-6.0, snr_db=15.0, seed=1))
    snr = 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
    assert snr == pytest.approx(15.0, abs=0.7)


def test_lost_frames_are_codec_silence_and_the_others_untouched() -> None:
    data = encode(to_pcm(tone(0.2, rate=PHONE_RATE)), "alaw")
    out = drop_frames(data, (1, 3, 99), "alaw")  # 99 is past the end: ignored
    assert len(out) == len(data)
    assert out[FRAME : 2 * FRAME] == bytes([SILENCE_BYTE["alaw"]]) * FRAME
    assert out[:FRAME] == data[:FRAME] and out[2 * FRAME : 3 * FRAME] == data[2 * FRAME : 3 * FRAME]


def test_drawn_loss_stays_in_the_profile_range_and_in_the_clip() -> None:
    profile = LineProfile(loss_p=1.0, loss_rate=(0.02, 0.04), max_burst=3)
    for seed in range(20):
        effects = draw(profile, 200, seed)
        assert 4 <= len(effects.lost_frames) <= 8 + 2  # a last burst may overshoot by 2
        assert all(0 <= i < 200 for i in effects.lost_frames)
    assert draw(LineProfile(loss_p=0.0), 200, 0).lost_frames == ()


def test_effects_record_round_trips_as_json_fields() -> None:
    effects = draw(LineProfile(level_step_p=1.0, clip_start_p=1.0, loss_p=1.0), 100, 7)
    d = effects.to_dict()
    assert d["codec"] in ("alaw", "ulaw") and d["seed"] == 7
    assert isinstance(d["lost_frames"], list) and len(d["level_step"]) == 2
    assert d["clip_start_ms"] > 0
