"""Fixtures of the voice tests: a fake synthesiser for fast tests, and the real voice
stack (Whisper, the offline voice, the NLU) for whole calls."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.settings import REPO_ROOT, Settings
from bot.sim.personas import Persona, load_persona
from bot.voice.config import VoiceSettings
from bot.voice.session import VoiceStack
from bot.voice.tts.cache import PromptCache
from bot.voice.tts.config import TtsSettings
from tests.conftest import SHARED


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


# -- whole calls (slow tests): the real voice stack, shared by a module ----------------

PERSONAS = SHARED / "personas"
AUDIO = PERSONAS / "audio"


def _need(path: Path, what: str) -> None:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{what} missing at {path}")
        pytest.skip(f"{what} missing at {path}")


@pytest.fixture(scope="module")
def stack_and_cache(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[VoiceStack, PromptCache]]:
    from bot.runtime import build_investigator
    from bot.voice.runtime import build_voice_stack, close_stack, prerender_prompts

    _need(PERSONAS / "p01_salary_owner.yaml", "shared personas")
    installed = Settings()  # where setup put the models and the TTS cache
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("voice"),
        whisper_model_dir=installed.whisper_path.resolve(),
        # short fault timeouts so that the fault calls end quickly
        voice=VoiceSettings(start_timeout_s=1.5, media_timeout_s=2.0, no_input_s=1.5),
        tts=TtsSettings(cache_dir=installed.tts.cache_path(installed.data_dir).resolve()),
    )
    _need(settings.whisper_path / "model.bin", "Whisper base (bot models install)")
    _need(settings.tts.python_path(REPO_ROOT), "the TTS venv (scripts/setup_tts.sh)")
    investigator = build_investigator(settings)
    stack, cache = build_voice_stack(settings, investigator)
    assert cache is not None
    prerender_prompts(cache, investigator)
    yield stack, cache
    close_stack(cache)


def persona(name: str) -> Persona:
    return load_persona(PERSONAS / f"{name}.yaml")
