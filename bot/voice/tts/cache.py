"""Prompt audio cache: each clause of a prompt is synthesised once per voice and kept.

A prompt is cut into clauses (:func:`~bot.voice.tts.text.split_clauses`); each clause is
keyed by ``sha256(voice + "\\n" + speakable(clause))``, rendered for the phone line
(trimmed, resampled to ``out_rate``, band-limited, levelled) and stored as a WAV file.
The fixed clauses of the scripts are therefore shared by every call and account, and a
call only synthesises the clauses that carry its own values (a name, a card tail, an
amount). An in-memory LRU sits in front of the disk; files are written atomically so
several worker processes can share one cache directory.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.voice.tts import audio
from bot.voice.tts.engine import Synthesizer
from bot.voice.tts.text import ends_sentence, speakable, split_clauses

#: Bump when the post-processing below changes, so old renderings are not reused.
RENDER_PROFILE = "p1"


@dataclass(frozen=True)
class Clause:
    """One cached unit of speech: the text as written, what is said, and its key."""

    text: str
    spoken: str
    key: str
    #: Silence that follows this clause inside a prompt.
    pause_s: float


class PromptCache:
    """Clause-level audio cache in front of a :class:`Synthesizer` (thread-safe)."""

    def __init__(
        self,
        synth: Synthesizer,
        cache_dir: Path,
        out_rate: int = 8000,
        *,
        memory_items: int = 1024,
        clause_pause_s: float = 0.12,
        sentence_pause_s: float = 0.3,
        min_clause_chars: int = 4,
        peak_dbfs: float = -3.0,
        telephone_filter: bool = True,
    ) -> None:
        self.synth = synth
        self.out_rate = out_rate
        self.dir = Path(cache_dir) / f"{out_rate}hz-{RENDER_PROFILE}"
        self.memory_items = memory_items
        self.clause_pause_s = clause_pause_s
        self.sentence_pause_s = sentence_pause_s
        self.min_clause_chars = min_clause_chars
        self.peak_dbfs = peak_dbfs
        self.telephone_filter = telephone_filter and out_rate <= 16000
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        #: Live synthesis requests (a call waiting for its prompt) queued or running;
        #: background pre-rendering waits while there are any.
        self._gate = threading.Condition()
        self._live = 0
        #: Clause lookups served from memory or disk, and clauses synthesised.
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0
        #: Seconds spent in the synthesiser and seconds of audio it produced.
        self.synth_s = 0.0
        self.synth_audio_s = 0.0

    # -- keys and clauses --------------------------------------------------------------
    def key(self, spoken: str) -> str:
        return hashlib.sha256(f"{self.synth.voice}\n{spoken}".encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.wav"

    def clauses(self, text: str) -> list[Clause]:
        out = []
        for piece in split_clauses(text, self.min_clause_chars):
            spoken = speakable(piece)
            if not spoken.strip("，。！？；："):
                continue
            pause = self.sentence_pause_s if ends_sentence(piece) else self.clause_pause_s
            out.append(Clause(piece, spoken, self.key(spoken), pause))
        return out

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    # -- lookups -----------------------------------------------------------------------
    def _remember(self, key: str, pcm: bytes) -> None:
        with self._lock:
            self._memory[key] = pcm
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    def cached(self, clause: Clause) -> bytes | None:
        """The clause's audio if it is in memory or on disk (counts a hit), else None."""
        with self._lock:
            pcm = self._memory.get(clause.key)
            if pcm is not None:
                self._memory.move_to_end(clause.key)
                self.hits += 1
                return pcm
        path = self.path(clause.key)
        try:
            pcm, rate = audio.read_wav(path)
        except (FileNotFoundError, EOFError):
            return None
        except Exception:  # unreadable or foreign file: render it again
            return None
        if rate != self.out_rate:
            return None
        self._remember(clause.key, pcm)
        with self._lock:
            self.hits += 1
            self.disk_hits += 1
        return pcm

    def render(self, spoken: str, *, background: bool = False) -> bytes:
        """Synthesise ``spoken`` and prepare it for the line (not cached). Background
        work (pre-rendering) yields to live requests: with several calls starting at once,
        a prompt a callee is waiting for never queues behind another call's preparation."""
        with self._gate:
            if background:
                self._gate.wait_for(lambda: self._live == 0)
            else:
                self._live += 1
        started = time.perf_counter()
        try:
            raw = self.synth.synthesize(spoken)
        finally:
            if not background:
                with self._gate:
                    self._live -= 1
                    self._gate.notify_all()
        elapsed = time.perf_counter() - started
        rate = self.synth.sample_rate
        x = audio.trim_silence(audio.to_float(raw), rate)
        with self._lock:
            self.synth_s += elapsed
            self.synth_audio_s += len(raw) / 2 / rate
        x = audio.resample(x, rate, self.out_rate)
        if self.telephone_filter:
            x = audio.telephone_band(x, self.out_rate)
        x = audio.peak_normalise(x, self.peak_dbfs)
        return audio.to_pcm(x)

    def clause_audio(self, clause: Clause, *, background: bool = False) -> bytes:
        """The clause's audio, synthesised and stored on a miss."""
        pcm = self.cached(clause)
        if pcm is not None:
            return pcm
        pcm = self.render(clause.spoken, background=background)
        audio.write_wav_atomic(self.path(clause.key), pcm, self.out_rate)
        self._remember(clause.key, pcm)
        with self._lock:
            self.misses += 1
        return pcm

    # -- prompts -----------------------------------------------------------------------
    def iter_audio(self, text: str, *, pause_scale: float = 1.0) -> Iterator[bytes]:
        """PCM16 at ``out_rate`` clause by clause, each followed by its pause (except
        the last; ``pause_scale`` lengthens them for a slow delivery): the first clause
        can be played while the next is synthesised."""
        clauses = self.clauses(text)
        for i, clause in enumerate(clauses):
            pcm = self.clause_audio(clause)
            if i < len(clauses) - 1:
                pcm += audio.silence(clause.pause_s * pause_scale, self.out_rate)
            yield pcm

    def audio(self, text: str) -> bytes:
        """The whole prompt as PCM16 mono at ``out_rate``."""
        return b"".join(self.iter_audio(text))

    def prerender(self, texts: Iterable[str]) -> tuple[int, int]:
        """Make sure every clause of ``texts`` is on disk: (clauses rendered now,
        clauses already cached). Duplicated clauses are counted once."""
        new = cached = 0
        seen: set[str] = set()
        for text in texts:
            for clause in self.clauses(text):
                if clause.key in seen:
                    continue
                seen.add(clause.key)
                if self.path(clause.key).is_file() or clause.key in self._memory:
                    cached += 1
                    continue
                self.clause_audio(clause, background=True)
                new += 1
        return new, cached
