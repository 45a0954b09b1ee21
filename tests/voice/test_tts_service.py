"""CachedTTSService frames (fake voice) and the load_tts_service configuration hook."""

from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStartedFrame, TTSStoppedFrame
from pipecat.services.tts_service import TTSService
from pipecat.tests.utils import run_test

from bot.voice.tts.cache import PromptCache
from bot.voice.tts.config import TtsSettings
from bot.voice.tts.service import (
    SLOW_PAUSE_SCALE,
    CachedTTSService,
    PacedSpeakFrame,
    load_tts_service,
)

PROMPT = "这笔交易的对方是李四，请问对方和您是什么关系？"


def _speak(service: TTSService, text: str) -> list[Any]:
    async def go() -> list[Any]:
        down, _ = await run_test(
            service,
            frames_to_send=[TTSSpeakFrame(text)],
            expected_down_frames=None,
        )
        return list(down)

    return asyncio.run(go())


def test_speak_frame_becomes_started_audio_stopped(cache: PromptCache) -> None:
    service = CachedTTSService(cache)
    down = [
        f
        for f in _speak(service, PROMPT)
        if isinstance(f, (TTSStartedFrame, TTSAudioRawFrame, TTSStoppedFrame))
    ]
    kinds = [type(f) for f in down]
    assert kinds[0] is TTSStartedFrame and kinds[-1] is TTSStoppedFrame
    assert kinds.count(TTSStartedFrame) == 1 and kinds.count(TTSStoppedFrame) == 1
    audio_frames = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert len(audio_frames) == len(down) - 2
    assert {f.sample_rate for f in audio_frames} == {8000}
    assert {f.num_channels for f in audio_frames} == {1}
    assert b"".join(f.audio for f in audio_frames) == cache.audio(PROMPT)
    assert cache.misses == 2  # synthesised once by the service, then served from the cache


def test_service_resamples_when_the_pipeline_wants_another_rate(cache: PromptCache) -> None:
    service = CachedTTSService(cache, sample_rate=16000)
    down = _speak(service, PROMPT)
    frames = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    total = sum(len(f.audio) for f in frames) / 2 / 16000
    assert {f.sample_rate for f in frames} == {16000}
    # all of the prompt arrives (plus up to the 80 ms flush pad), none of it held back
    expected = len(cache.audio(PROMPT)) / 2 / 8000
    assert expected - 0.01 <= total <= expected + 0.09


def test_synthesis_failure_becomes_an_error_frame_not_a_crash(
    cache: PromptCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_: str) -> bytes:
        raise RuntimeError("voice is down")

    monkeypatch.setattr(cache.synth, "synthesize", broken)
    errors: list[Any] = []

    async def go() -> None:
        _, up = await run_test(
            CachedTTSService(cache),
            frames_to_send=[TTSSpeakFrame(PROMPT)],
            expected_down_frames=None,
        )
        errors.extend(up)

    asyncio.run(go())
    assert any("voice is down" in getattr(f, "error", "") for f in errors)


def test_load_default_spec_builds_cached_service(cache: PromptCache) -> None:
    service = load_tts_service(TtsSettings().service, cache)
    assert isinstance(service, CachedTTSService)
    assert service.cache is cache


def test_load_cached_without_cache_is_an_error() -> None:
    with pytest.raises(ValueError, match="PromptCache"):
        load_tts_service("cached", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon_here", "package.module:factory"),
        ("mod:", "package.module:factory"),
        ("surely_not_a_module_xyz:make", "cannot import"),
        ("tests.voice.test_tts_service:no_such_factory", "has no"),
        ("tests.voice.test_tts_service:PROMPT", "not callable"),
    ],
)
def test_load_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_tts_service(spec, None)


def test_load_factory_spec_returns_any_pipecat_service(
    cache: PromptCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("fake_voice_vendor")
    seen: dict[str, Any] = {}

    def make(**kwargs: Any) -> TTSService:
        seen.update(kwargs)
        return CachedTTSService(cache)

    module.make = make  # type: ignore[attr-defined]
    module.not_a_service = lambda **_: object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_voice_vendor", module)
    service = load_tts_service("fake_voice_vendor:make", None, api_key="k")
    assert isinstance(service, TTSService) and seen == {"api_key": "k"}
    with pytest.raises(TypeError, match="not a pipecat TTSService"):
        load_tts_service("fake_voice_vendor:not_a_service", None)


def test_settings_resolve_default_paths(tmp_path: Path) -> None:
    s = TtsSettings()
    assert s.python_path(tmp_path) == tmp_path / ".venv-tts" / "bin" / "python"
    assert s.cache_path(tmp_path / "var") == tmp_path / "var" / "tts-cache"
    custom = TtsSettings(tts_python=Path("/opt/v/bin/python"), cache_dir=Path("/c"))
    assert custom.python_path(tmp_path) == Path("/opt/v/bin/python")
    assert custom.cache_path(tmp_path) == Path("/c")


def test_a_slow_utterance_is_spoken_with_longer_pauses(cache: PromptCache) -> None:
    def audio_of(frame: TTSSpeakFrame) -> bytes:
        async def go() -> list[Any]:
            down, _ = await run_test(
                CachedTTSService(cache), frames_to_send=[frame], expected_down_frames=None
            )
            return list(down)

        return b"".join(f.audio for f in asyncio.run(go()) if isinstance(f, TTSAudioRawFrame))

    plain = audio_of(TTSSpeakFrame(PROMPT))
    slow = audio_of(PacedSpeakFrame(PROMPT, slow=True))
    assert audio_of(PacedSpeakFrame(PROMPT)) == plain  # not slow: spoken as before
    pauses = [c.pause_s for c in cache.clauses(PROMPT)][:-1]
    extra = round(sum(pauses) * (SLOW_PAUSE_SCALE - 1) * 8000) * 2
    assert pauses and abs(len(slow) - len(plain) - extra) <= 2 * len(pauses) * 2
    assert slow.replace(b"\x00", b"") == plain.replace(b"\x00", b"")  # the same speech
