"""Fixtures for the speech-out tests: a fake synthesiser for fast tests."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from bot.voice.tts.cache import PromptCache


class ToneSynth:
    """Stands in for the voice: 0.1 s of a 300 Hz tone per character, so audio length
    depends on the text; records what it was asked to say."""

    voice = "tone-v1"
    sample_rate = 24000

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> bytes:
        with self._lock:
            self.calls.append(text)
        n = int(0.1 * self.sample_rate * len(text))
        t = np.arange(n) / self.sample_rate
        return bytes((0.5 * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2").tobytes())


@pytest.fixture
def tone() -> ToneSynth:
    return ToneSynth()


@pytest.fixture
def cache(tone: ToneSynth, tmp_path: Path) -> PromptCache:
    return PromptCache(tone, tmp_path / "tts-cache", out_rate=8000)
