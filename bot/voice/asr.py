"""Speech recognition with one shared faster-whisper model.

The model is loaded once per process and shared by every call (loading takes seconds
and ~150 MB; CTranslate2 runs ``num_workers`` transcriptions in parallel). Decoding is
tuned for short phone answers and a bounded latency: greedy (beam 1), no temperature
fallback, no conditioning on earlier text, and a token cap proportional to the audio
length, so a hallucination loop on a short or noisy clip cannot run for seconds.
Traditional characters (Whisper writes them often for Mandarin) are folded to
Simplified by the NLU's normaliser; homophone tolerance is the NLU's pinyin matching.

**Short encoder windows.** Whisper pads every input to a 30 s window, and on a CPU the
encoder over that window is most of the cost of a short answer. CTranslate2 accepts a
shorter window, so a segment is decoded in a window a little longer than itself, but
never shorter than ``MIN_WINDOW_S``: on the public personas' answers cut into VAD-like
segments over an 8 kHz line, a 12 s floor gave a CER of 22.9 % against 22.1 % with the
full 30 s window, about 4x faster; below ~8 s the decoder starts to loop ("每个月发工资用
每个月发工资用...": 45.7 % with a 4 s floor). A segment longer than
``MAX_SHORT_WINDOW_S`` is cut at quiet moments and decoded piece by piece (faster-whisper's
own 30 s windows without timestamps dropped whole sentences of such segments).

**Decode hints.** On the identity turn the STT passes a :class:`DecodeHint`: the holder's
name as ``hotwords`` (faster-whisper's mechanism: ``<|startofprev|>`` + the name's tokens
before the start-of-transcript sequence, as if the name had been said just before), a
tighter token cap, and a beam with several hypotheses returned as
:attr:`Transcript.alternatives` for the dialogue's name match. Measured on phone-line
persona audio (``docs/voice.md``, "Identity on a phone line"): the name is heard far more
often and nothing is inserted; on every turn the same hotword put the name into unrelated
answers, and the name in an ``initial_prompt`` (the decoded text's context) made Whisper
echo it on a bare "嗯", so neither is done.

**Speech gate.** Whisper writes plausible Mandarin for pure noise (on one CI machine's
CPU, two seconds of white noise came out as "切成小小的"), and its no-speech probability
does not always catch it. Before decoding, faster-whisper's bundled Silero VAD (ONNX,
part of the wheel, no download) must find speech somewhere in the segment; it takes
about 10 ms per answer and found speech in all 60 public persona answers over a
phone-degraded line.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlu.normalize import normalize
from nlu.phonetic import sounds_like

#: Characters a Mandarin speaker says per second is about 4-5; one token per character
#: plus headroom. The floor covers very short clips ("对", "好的").
TOKENS_PER_SECOND = 12
MIN_TOKENS = 16
MAX_TOKENS = 440  # Whisper's decoder context is 448
#: Hinted (identity-turn) decodes: new tokens per second of audio plus a floor. Tighter
#: than the default: a hotword prefix makes a runaway repetition of the name likelier.
HINT_TOKENS_PER_SECOND = 10
HINT_MIN_NEW_TOKENS = 6
#: Hinted decodes run in timestamp mode (see ``_decode_short``): room for the timestamp
#: pairs of a short answer, and faster-whisper's limit on the first timestamp (1 s).
TIMESTAMP_TOKENS = 6
MAX_INITIAL_TIMESTAMP_INDEX = 50
#: Short-window decoding: silence after the speech, rounding step, shortest window.
WINDOW_PAD_S = 1.0
WINDOW_STEP_S = 2.0
MIN_WINDOW_S = 12.0
MAX_SHORT_WINDOW_S = 28.0
#: A longer segment is cut at its quietest 20 ms within this many seconds of the limit.
LONG_SPLIT_SEARCH_S = 6.0
FRAMES_PER_SECOND = 100
#: Whisper's own rule for "this is not speech": a high no-speech probability together
#: with a low average log-probability of the text.
NO_SPEECH_LOGPROB = -1.0


@dataclass(frozen=True)
class AsrOptions:
    language: str = "zh"
    beam_size: int = 1
    #: A segment whose no-speech probability is above this (and whose text is improbable)
    #: is dropped as noise or breath.
    no_speech_threshold: float = 0.6
    #: A segment whose average token log-probability is below this is dropped as garbage.
    min_avg_logprob: float = -1.5
    cpu_threads: int = 0  # 0 = CTranslate2's default (all cores)
    num_workers: int = 1
    compute_type: str = "int8"
    device: str = "cpu"
    #: Decode only segments in which the Silero VAD hears speech (see the module notes).
    speech_gate: bool = True
    #: The gate's speech probability threshold (faster-whisper's VadOptions.threshold).
    speech_threshold: float = 0.5


@dataclass(frozen=True)
class DecodeHint:
    """Per-segment decoding hints from the dialogue (see the module notes)."""

    #: Words Whisper should expect (the holder's name), as a previous-text prefix.
    hotwords: str = ""
    #: Hypotheses to return (the best first); more than one decodes with a beam this wide
    #: (or ``AsrOptions.beam_size`` when wider).
    hypotheses: int = 1


@dataclass(frozen=True)
class Transcript:
    text: str  # normalised (Simplified, width-folded)
    raw: str  # as Whisper wrote it
    audio_s: float
    seconds: float  # wall time spent transcribing
    #: The other hypotheses of a hinted decode, normalised, best first, without ``text``.
    alternatives: tuple[str, ...] = ()


class Transcriber:
    """Thread-safe transcription of 16 kHz float32 mono samples."""

    def __init__(self, model_dir: Path, options: AsrOptions | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.options = options or AsrOptions()
        self._model: Any = None
        self._lock = threading.Lock()
        self._prefixes: dict[str, list[int]] = {}

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

    def transcribe(
        self, samples: np.ndarray, rate: int = 16000, hint: DecodeHint | None = None
    ) -> Transcript:
        started = time.perf_counter()
        early = self.screen(samples, rate)
        if early is not None:
            return early
        samples = samples.astype(np.float32, copy=False)
        audio_s = samples.size / rate
        if audio_s + WINDOW_PAD_S <= MAX_SHORT_WINDOW_S:
            raws = self._decode_piece(samples, hint)
            if hint is not None and hint.hotwords.strip():
                raws = self._check_name(samples, raws, hint.hotwords.strip())
        else:
            raws = [self._decode_long(samples)]
        return _transcript(raws, audio_s, started)

    def screen(self, samples: np.ndarray, rate: int = 16000) -> Transcript | None:
        """The empty transcript of a segment with nothing to decode (under 100 ms, or no
        speech for the gate); None when it is to be decoded."""
        if rate != 16000:
            raise ValueError("Whisper needs 16 kHz samples")
        audio_s = samples.size / rate
        started = time.perf_counter()
        if samples.size < rate // 10:  # under 100 ms: nothing to hear
            return Transcript("", "", audio_s, 0.0)
        samples = samples.astype(np.float32, copy=False)
        if self.options.speech_gate and not self._has_speech(samples):
            return Transcript("", "", audio_s, time.perf_counter() - started)
        return None

    def batch_key(self, samples: np.ndarray, hint: DecodeHint | None = None) -> float | None:
        """The encoder window (s) a screened segment is decoded in, when it may share one
        ``generate`` call with other segments of that window (:meth:`decode_batch`); None
        when it is decoded alone: a hinted decode has its own prefix, beam, hypotheses and
        timestamp mode and may decode twice, a long segment is cut into pieces."""
        if hint is not None and (hint.hotwords.strip() or hint.hypotheses > 1):
            return None
        audio_s = samples.size / 16000
        if audio_s + WINDOW_PAD_S > MAX_SHORT_WINDOW_S:
            return None
        return encoder_window(audio_s)

    def decode_batch(self, pieces: Sequence[np.ndarray]) -> list[Transcript]:
        """Screened, unhinted segments of one encoder window (:meth:`batch_key`) decoded
        in one ``generate`` call: the encoder and every decoder step run once for the
        batch. Each gets the text a decode alone gives it: the batch runs to the largest
        token cap, so a segment that reached its own (a runaway on a short clip, which
        alone stops there) is decoded again alone."""
        import ctranslate2

        started = time.perf_counter()
        windows = {encoder_window(p.size / 16000) for p in pieces}
        if len(windows) != 1:
            raise ValueError(f"a batch shares one encoder window, not {sorted(windows)}")
        window = windows.pop()
        pieces = [p.astype(np.float32, copy=False) for p in pieces]
        caps = [token_cap(p.size / 16000) for p in pieces]
        prompt, _eot = self._prompt
        features = np.stack([self._features(p, window) for p in pieces])
        results = self.model.model.generate(
            ctranslate2.StorageView.from_array(features),
            [prompt] * len(pieces),
            beam_size=self.options.beam_size,
            max_length=max(caps),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
        )
        out: list[Transcript] = []
        for piece, cap, result in zip(pieces, caps, results, strict=True):
            # CTranslate2 4.x generates at most max_length // 2 tokens here (measured);
            # a sequence that long may have been cut short alone.
            capped = len(result.sequences_ids[0]) >= cap // 2
            raws = self._decode_piece(piece) if capped and cap < max(caps) else self._texts(result)
            out.append(_transcript(raws, piece.size / 16000, started))
        return out

    def _check_name(self, samples: np.ndarray, raws: list[str], name: str) -> list[str]:
        """A hinted decode that writes the hotword is checked: the hotword can put the
        name over a bare "嗯" ("嗯，是我" -> "孙丽孙丽孙丽", "孙丽是我"). The name stands
        when a decode without the hint writes something sharing at least half its
        syllables (沉定 for 陈静); otherwise that plain decode comes first and the hinted
        hypotheses become its alternatives."""
        if not any(name in normalize(r) for r in raws):
            return raws
        plain = self._decode_piece(samples)[0]
        text = normalize(plain)
        slips = len(name) - math.ceil(len(name) / 2)
        if name in text or sounds_like(text, name, within=True, slips=slips):
            return raws
        return [plain, *raws]

    def _has_speech(self, samples: np.ndarray) -> bool:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(threshold=self.options.speech_threshold)
        return bool(get_speech_timestamps(samples, options))

    def _decode_short(
        self, samples: np.ndarray, audio_s: float, max_tokens: int, hint: DecodeHint | None
    ) -> list[str]:
        """One decode in an encoder window just longer than the speech: the hypotheses'
        texts, best first (one unless the hint asks for more); ``[""]`` when the best
        one looks like noise."""
        import ctranslate2

        model = self.model
        features = self._features(samples, encoder_window(audio_s))
        prefix = self._hotword_prefix(hint.hotwords) if hint else []
        prompt, _eot = self._prompt
        extra: dict[str, Any] = {}
        if prefix:
            # With a hotword prefix and no timestamps, Whisper often writes the hotword
            # alone and skips the answer ("不是，你打错了，我不认识陈静" -> "陈静" at 15 dB);
            # in timestamp mode, as faster-whisper decodes by default, it does not.
            prompt = prompt[:-1]
            extra["max_initial_timestamp_index"] = MAX_INITIAL_TIMESTAMP_INDEX
            max_tokens += TIMESTAMP_TOKENS
        hypotheses = max(1, hint.hypotheses) if hint else 1
        result = model.model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
            [prefix + prompt],
            beam_size=max(self.options.beam_size, hypotheses),
            num_hypotheses=hypotheses,
            max_length=len(prefix) + max_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            **extra,
        )[0]
        return self._texts(result)

    def _features(self, samples: np.ndarray, window: float) -> np.ndarray:
        """The log-mel features of ``samples`` padded with silence to ``window`` s."""
        padded = np.zeros(int(window * 16000), dtype=np.float32)
        padded[: samples.size] = samples
        features: np.ndarray = self.model.feature_extractor(padded)
        return features[:, : int(window * FRAMES_PER_SECOND)]

    def _texts(self, result: Any) -> list[str]:
        """A generation result's texts, best first; ``[""]`` when the best looks like
        noise, and without the hypotheses below ``min_avg_logprob``."""
        model = self.model
        _prompt, eot = self._prompt
        texts: list[str] = []
        for i, sequence in enumerate(result.sequences_ids):
            tokens = [t for t in sequence if t < eot]
            avg_logprob = result.scores[i] / (len(tokens) + 1) if result.scores else 0.0
            if i == 0 and self._is_noise(avg_logprob, result.no_speech_prob):
                return [""]
            if avg_logprob >= self.options.min_avg_logprob:
                texts.append(str(model.hf_tokenizer.decode(tokens)).strip())
        return texts

    def _is_noise(self, avg_logprob: float, no_speech_prob: float) -> bool:
        o = self.options
        return avg_logprob < o.min_avg_logprob or (
            no_speech_prob > o.no_speech_threshold and avg_logprob < NO_SPEECH_LOGPROB
        )

    def _hotword_prefix(self, hotwords: str) -> list[int]:
        """``<|startofprev|>`` + the hotwords' tokens, as faster-whisper's ``get_prompt``
        builds it (the leading space included); empty without hotwords."""
        words = hotwords.strip()
        if not words:
            return []
        if words not in self._prefixes:
            ids = self.model.hf_tokenizer.encode(" " + words, add_special_tokens=False).ids
            self._prefixes[words] = [self._token("<|startofprev|>"), *ids[: MAX_TOKENS // 4]]
        return self._prefixes[words]

    @functools.cached_property
    def _prompt(self) -> tuple[list[int], int]:
        """The decoder prompt (start, language, task, no timestamps) and the end-of-text
        token, looked up once."""
        prompt = [self._token(t) for t in (
            "<|startoftranscript|>", f"<|{self.options.language}|>", "<|transcribe|>",
            "<|notimestamps|>",
        )]  # fmt: skip
        return prompt, self._token("<|endoftext|>")

    def _token(self, text: str) -> int:
        token = self.model.hf_tokenizer.token_to_id(text)
        if token is None:
            raise ValueError(f"the Whisper tokenizer has no {text}")
        return int(token)

    def _decode_long(self, samples: np.ndarray) -> str:
        """A segment too long for one short window: cut it at the quietest moment before
        each window's end (not mid-word) and decode the pieces one after another."""
        rate = 16000
        limit = int((MAX_SHORT_WINDOW_S - WINDOW_PAD_S) * rate)
        search = int(LONG_SPLIT_SEARCH_S * rate)
        frame = rate // 50  # 20 ms
        pieces: list[str] = []
        start = 0
        while samples.size - start > limit:
            lo, hi = start + limit - search, start + limit
            energy = np.convolve(samples[lo:hi] ** 2, np.ones(frame), mode="valid")
            cut = lo + int(np.argmin(energy)) + frame // 2
            pieces.append(self._decode_piece(samples[start:cut])[0])
            start = cut
        pieces.append(self._decode_piece(samples[start:])[0])
        return "".join(pieces)

    def _decode_piece(self, samples: np.ndarray, hint: DecodeHint | None = None) -> list[str]:
        audio_s = samples.size / 16000
        return self._decode_short(samples, audio_s, token_cap(audio_s, hint), hint)

    def warm_up(self) -> None:
        """Load the model and run one decode, so the first call's first turn is not slow."""
        self.transcribe(np.zeros(16000, dtype=np.float32))


def encoder_window(audio_s: float) -> float:
    """The encoder window (s) a short segment is decoded in: the speech plus
    ``WINDOW_PAD_S``, rounded up to ``WINDOW_STEP_S``, within ``MIN_WINDOW_S`` ..
    ``MAX_SHORT_WINDOW_S`` (see the module notes)."""
    steps = math.ceil((audio_s + WINDOW_PAD_S) / WINDOW_STEP_S)
    return min(MAX_SHORT_WINDOW_S, max(MIN_WINDOW_S, steps * WINDOW_STEP_S))


def _transcript(raws: list[str], audio_s: float, started: float) -> Transcript:
    """The transcript of decoded texts (best first; the rest become alternatives)."""
    texts = [normalize(r) for r in raws]
    alternatives = tuple(dict.fromkeys(t for t in texts[1:] if t and t != texts[0]))
    return Transcript(texts[0], raws[0], audio_s, time.perf_counter() - started, alternatives)


def token_cap(audio_s: float, hint: DecodeHint | None = None) -> int:
    """The decoder's length limit for a clip, counting the 4-token start sequence (the
    hotword prefix comes on top): ~12 tokens a second with a floor of 16, or on a hinted
    decode ~10 new tokens a second + 6."""
    if hint is not None and hint.hotwords:
        new = HINT_MIN_NEW_TOKENS + int(HINT_TOKENS_PER_SECOND * audio_s)
        return min(MAX_TOKENS, 4 + new)
    return min(MAX_TOKENS, MIN_TOKENS + int(TOKENS_PER_SECOND * audio_s))


_shared: dict[tuple[Path, AsrOptions], Transcriber] = {}
_shared_lock = threading.Lock()


def shared_transcriber(model_dir: Path, options: AsrOptions | None = None) -> Transcriber:
    """The process-wide transcriber for a model directory and options."""
    key = (Path(model_dir).resolve(), options or AsrOptions())
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Transcriber(key[0], key[1])
        return _shared[key]
