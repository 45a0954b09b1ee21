"""Speech recognition with one shared faster-whisper model.

The model is loaded once per process and shared by every call (loading takes seconds
and ~150 MB; CTranslate2 runs ``num_workers`` transcriptions in parallel). Decoding is
tuned for short phone answers and a bounded latency: greedy (beam 1), no temperature
fallback, no conditioning on earlier text, and a token cap proportional to the audio
length, so a hallucination loop on a short or noisy clip cannot run for seconds.
Traditional characters (Whisper writes them often for Mandarin) are folded to
Simplified by the NLU's normaliser; homophone tolerance is the NLU's pinyin matching.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlu.normalize import normalize

#: Characters a Mandarin speaker says per second is about 4-5; one token per character
#: plus headroom. The floor covers very short clips ("对", "好的").
TOKENS_PER_SECOND = 12
MIN_TOKENS = 16
MAX_TOKENS = 440  # Whisper's decoder context is 448


@dataclass(frozen=True)
class AsrOptions:
    language: str = "zh"
    beam_size: int = 1
    #: Segments whose no-speech probability is above this are dropped (noise, breath).
    no_speech_threshold: float = 0.6
    #: Segments whose average token log-probability is below this are dropped too.
    min_avg_logprob: float = -1.2
    cpu_threads: int = 0  # 0 = CTranslate2's default (all cores)
    num_workers: int = 1
    compute_type: str = "int8"
    device: str = "cpu"


@dataclass(frozen=True)
class Transcript:
    text: str  # normalised (Simplified, width-folded)
    raw: str  # as Whisper wrote it
    audio_s: float
    seconds: float  # wall time spent transcribing


class Transcriber:
    """Thread-safe transcription of 16 kHz float32 mono samples."""

    def __init__(self, model_dir: Path, options: AsrOptions | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.options = options or AsrOptions()
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        if not (self.model_dir / "model.bin").is_file():
            raise FileNotFoundError(
                f"no Whisper model in {self.model_dir}: run `bot models install` "
                "or set BOT_WHISPER_MODEL_DIR"
            )
        from faster_whisper import WhisperModel

        o = self.options
        return WhisperModel(
            str(self.model_dir),
            device=o.device,
            compute_type=o.compute_type,
            cpu_threads=o.cpu_threads,
            num_workers=o.num_workers,
        )

    def transcribe(self, samples: np.ndarray, rate: int = 16000) -> Transcript:
        if rate != 16000:
            raise ValueError("Whisper needs 16 kHz samples")
        audio_s = samples.size / rate
        started = time.perf_counter()
        if samples.size < rate // 10:  # under 100 ms: nothing to hear
            return Transcript("", "", audio_s, 0.0)
        o = self.options
        segments, _info = self.model.transcribe(
            samples.astype(np.float32, copy=False),
            language=o.language,
            beam_size=o.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            max_new_tokens=min(MAX_TOKENS, MIN_TOKENS + int(TOKENS_PER_SECOND * audio_s)),
        )
        raw = "".join(
            s.text
            for s in segments
            if s.no_speech_prob <= o.no_speech_threshold and s.avg_logprob >= o.min_avg_logprob
        ).strip()
        return Transcript(normalize(raw), raw, audio_s, time.perf_counter() - started)

    def warm_up(self) -> None:
        """Load the model and run one decode, so the first call's first turn is not slow."""
        self.transcribe(np.zeros(16000, dtype=np.float32))


_shared: dict[tuple[Path, AsrOptions], Transcriber] = {}
_shared_lock = threading.Lock()


def shared_transcriber(model_dir: Path, options: AsrOptions | None = None) -> Transcriber:
    """The process-wide transcriber for a model directory and options."""
    key = (Path(model_dir).resolve(), options or AsrOptions())
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Transcriber(key[0], key[1])
        return _shared[key]
