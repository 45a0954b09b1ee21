"""A light voice stack for tests that need the real media server and pipeline but not
the installed models: the real templates, dialogue, Silero VAD (bundled with pipecat),
pipecat pipeline and serializer; a keyword-table NLU, a short tone for a voice, and no
Whisper (the callee must not speak)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from bot.core.investigation import Investigator
from bot.core.policy import Policy
from bot.core.routing import load_router
from bot.core.scoring import RiskScorer, load_ruleset
from bot.core.scripts import load_library
from bot.settings import Settings
from bot.voice.asr import AsrOptions, Transcriber
from bot.voice.config import VoiceSettings
from bot.voice.session import VoiceStack
from bot.voice.tts.cache import PromptCache
from bot.voice.tts.service import CachedTTSService
from tests.conftest import STANDARD_TABLE, TableAnalyzer


class ShortTone:
    """A voice of 10 ms of tone per character: prompts play quickly."""

    voice = "short-tone-v1"
    sample_rate = 8000

    def synthesize(self, text: str) -> bytes:
        t = np.arange(80 * len(text)) / self.sample_rate
        return bytes((0.3 * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2").tobytes())


class NoWhisper:
    """Never asked: the callee stays silent, so the VAD cuts no segment."""

    model_dir = Path("no-whisper")
    options = AsrOptions()

    def transcribe(self, samples: Any, rate: int = 16000) -> Any:
        raise AssertionError("nothing was said")


def light_stack(tmp_path: Path, voice: VoiceSettings | None = None) -> VoiceStack:
    """Everything a call needs, without the installed models (see the module doc)."""
    s = Settings(data_dir=tmp_path)
    router, _ = load_router(s.templates_dir, s.tiers.medium, s.tiers.high)
    investigator = Investigator(
        load_library(s.templates_dir),
        router,
        RiskScorer(load_ruleset(s.templates_dir / "rulesets" / "default.yaml")),
        Policy.from_file(s.policy_file, sample_rate=0.0, sample_seed="tests"),
        TableAnalyzer(dict(STANDARD_TABLE)),
        bank_name=s.bank_name,
    )
    cache = PromptCache(ShortTone(), tmp_path / "tts", out_rate=8000)
    return VoiceStack(
        investigator,
        cast(Transcriber, NoWhisper()),
        lambda: CachedTTSService(cache),
        settings=voice or VoiceSettings(record=False),
    )
