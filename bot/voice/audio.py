"""Audio helpers for the phone line: PCM, G.711 mu-law, resampling, WAV files.

Everything here works on 16-bit signed little-endian mono PCM (``bytes``) or float32
numpy arrays in [-1, 1]. The telephone side of a call is 8 kHz mu-law; Whisper wants
16 kHz; persona recordings are 24 kHz. Resampling uses soxr (the resampler pipecat
itself uses); mu-law and A-law (G.711's two laws: mu-law on North American and Japanese
trunks and on Twilio's media streams, A-law on European and Chinese ones) use the
standard library's G.711 codec.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import wave
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

with warnings.catch_warnings():  # deprecated from 3.13 on; the project pins 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

PHONE_RATE = 8000
WHISPER_RATE = 16000
SAMPLE_WIDTH = 2  # bytes per 16-bit sample


class AudioError(ValueError):
    """Audio that cannot be read or decoded (empty, truncated, not audio at all)."""


def to_float(pcm: bytes) -> np.ndarray:
    """16-bit PCM bytes -> float32 samples in [-1, 1]."""
    if len(pcm) % SAMPLE_WIDTH:
        pcm = pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def to_pcm(samples: np.ndarray) -> bytes:
    """float samples in [-1, 1] -> 16-bit PCM bytes (clipped)."""
    clipped = np.clip(samples, -1.0, 1.0)
    return bytes((clipped * 32767.0).astype("<i2").tobytes())


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    return np.asarray(soxr.resample(samples, from_rate, to_rate), dtype=np.float32)


def resample_pcm(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    return to_pcm(resample(to_float(pcm), from_rate, to_rate))


def ulaw_encode(pcm: bytes) -> bytes:
    return bytes(audioop.lin2ulaw(pcm, SAMPLE_WIDTH))


def ulaw_decode(ulaw: bytes) -> bytes:
    return bytes(audioop.ulaw2lin(ulaw, SAMPLE_WIDTH))


def alaw_encode(pcm: bytes) -> bytes:
    return bytes(audioop.lin2alaw(pcm, SAMPLE_WIDTH))


def alaw_decode(alaw: bytes) -> bytes:
    return bytes(audioop.alaw2lin(alaw, SAMPLE_WIDTH))


def read_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate; :class:`AudioError` for anything unreadable."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no samples")
    return data.mean(axis=1).astype(np.float32), int(rate)


def to_phone_line(samples: np.ndarray, rate: int) -> bytes:
    """What a telephone network carries: resampled to 8 kHz, mu-law encoded."""
    return ulaw_encode(to_pcm(resample(samples, rate, PHONE_RATE)))


def degrade_for_phone(
    samples: np.ndarray, rate: int, *, snr_db: float | None = 20.0, seed: int = 0
) -> np.ndarray:
    """A phone-quality copy at 8 kHz: band-limited by the resampler, mu-law round trip,
    plus white noise at ``snr_db`` (None = no noise). Deterministic for a seed."""
    line = resample(samples, rate, PHONE_RATE)
    if snr_db is not None and line.size:
        power = float(np.mean(line**2)) or 1e-9
        noise = np.random.default_rng(seed).normal(
            0.0, np.sqrt(power / 10 ** (snr_db / 10)), line.size
        )
        line = line + noise.astype(np.float32)
    return to_float(ulaw_decode(ulaw_encode(to_pcm(line))))


def wav_bytes(pcm: bytes, rate: int, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def write_wav(path: Path, pcm: bytes, rate: int, channels: int = 1) -> None:
    """Write a 16-bit WAV to a temporary file in the same directory, then rename it over
    ``path``: a reader (in any process) sees either no file or a complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(wav_bytes(pcm, rate, channels))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_wav(path: Path) -> tuple[bytes, int]:
    """PCM16 mono frames and sample rate of a WAV written by :func:`write_wav`."""
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f"{path}: not 16-bit mono")
        return w.readframes(w.getnframes()), w.getframerate()


def interleave(left: bytes, right: bytes) -> bytes:
    """Two mono 16-bit tracks -> one stereo track (the shorter padded with silence)."""
    a = np.frombuffer(left, dtype="<i2")
    b = np.frombuffer(right, dtype="<i2")
    n = max(a.size, b.size)
    out = np.zeros((n, 2), dtype="<i2")
    out[: a.size, 0] = a
    out[: b.size, 1] = b
    return out.tobytes()


def duration_s(pcm: bytes, rate: int) -> float:
    return len(pcm) / (SAMPLE_WIDTH * rate)
