"""PCM helpers of the prompt cache: trim, level, band-limit, pauses. The general ones
(conversion, resampling, WAV I/O) are :mod:`bot.voice.audio`'s, re-exported here."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bot.voice.audio import read_wav, resample, to_float, to_pcm, wav_bytes
from bot.voice.audio import write_wav as write_wav_atomic

__all__ = [
    "peak_normalise",
    "read_wav",
    "resample",
    "silence",
    "telephone_band",
    "to_float",
    "to_pcm",
    "trim_silence",
    "wav_bytes",
    "write_wav_atomic",
]

Float = NDArray[np.float32]


def trim_silence(x: Float, rate: int, threshold_db: float = -45.0, keep_s: float = 0.03) -> Float:
    """Drop leading/trailing near-silence (below ``threshold_db`` re full scale), keeping
    ``keep_s`` of margin so that onsets and releases are not cut."""
    if x.size == 0:
        return x
    peak = float(np.max(np.abs(x)))
    if peak == 0.0:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) > 10 ** (threshold_db / 20) * max(peak, 1e-4))
    if loud.size == 0:
        return x[:0]
    keep = int(keep_s * rate)
    return x[max(0, int(loud[0]) - keep) : int(loud[-1]) + keep + 1]


def telephone_band(x: Float, rate: int, low_hz: float = 250.0) -> Float:
    """Remove energy below ``low_hz`` (a phone line drops it anyway; what is left of it
    only eats mu-law headroom). The top of the band is set by resampling to 8 kHz."""
    if x.size == 0:
        return x
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1.0 / rate)
    ramp = np.clip((freqs - low_hz * 0.6) / (low_hz * 0.4), 0.0, 1.0)
    return np.asarray(np.fft.irfft(spectrum * ramp, n=x.size), dtype=np.float32)


def peak_normalise(x: Float, peak_dbfs: float = -3.0) -> Float:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 1e-4:
        return x
    return np.asarray(x * (10 ** (peak_dbfs / 20) / peak), dtype=np.float32)


def silence(seconds: float, rate: int) -> bytes:
    return b"\x00\x00" * round(seconds * rate)
