"""The pipecat side: a ``TTSService`` that speaks from the prompt cache, and the
configuration hook that swaps in any other pipecat TTS service."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from cachetools import FIFOCache
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TTSSpeakFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService

from bot import metrics
from bot.voice.tts.audio import silence
from bot.voice.tts.cache import PromptCache

_DONE = object()
#: A slow utterance (the caller hears badly) is spoken with pauses this much longer
#: between its clauses and sentences.
SLOW_PAUSE_SCALE = 2.5


@dataclass
class PacedSpeakFrame(TTSSpeakFrame):
    """A ``TTSSpeakFrame`` that may ask to be spoken slowly (other TTS services treat it
    as a plain ``TTSSpeakFrame``)."""

    slow: bool = False


def _next(it: Iterator[bytes]) -> Any:
    return next(it, _DONE)


class CachedTTSService(TTSService):
    """Speaks each ``TTSSpeakFrame`` clause by clause from a :class:`PromptCache`.

    Cached clauses cost a file or memory read; a missing clause is synthesised in a
    worker thread (never on the event loop), and the first clause is on its way to the
    transport before the later ones are synthesised.
    """

    def __init__(self, cache: PromptCache, **kwargs: Any) -> None:
        kwargs.setdefault("sample_rate", cache.out_rate)
        kwargs.setdefault("settings", TTSSettings(model=None, voice=None, language=None))
        super().__init__(push_start_frame=True, push_stop_frames=True, **kwargs)
        self.cache = cache
        self._next_slow = False
        #: Speak contexts to be spoken slowly (the last few; a context may be spoken in
        #: several sentences).
        self._slow: FIFOCache[str, bool] = FIFOCache(maxsize=16)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, TTSSpeakFrame):
            self._next_slow = isinstance(frame, PacedSpeakFrame) and frame.slow
        await super().process_frame(frame, direction)

    async def on_turn_context_created(self, context_id: str) -> None:
        self._slow[context_id] = self._next_slow
        self._next_slow = False
        await super().on_turn_context_created(context_id)

    def can_generate_metrics(self) -> bool:
        return True

    async def _clauses(self, text: str, pause_scale: float = 1.0) -> AsyncIterator[bytes]:
        it = self.cache.iter_audio(text, pause_scale=pause_scale)
        step = max(2, self.chunk_size - self.chunk_size % 2)
        while True:
            pcm = await asyncio.to_thread(_next, it)
            if pcm is _DONE:
                if self.sample_rate != self.cache.out_rate:
                    # pipecat's stream resampler holds back its last few ms: push them out
                    yield silence(0.08, self.cache.out_rate)
                return
            for i in range(0, len(pcm), step):
                yield pcm[i : i + step]

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        try:
            await self.start_tts_usage_metrics(text)
            scale = SLOW_PAUSE_SCALE if self._slow.get(context_id) else 1.0
            async for frame in self._stream_audio_frames_from_iterator(
                self._clauses(text, scale),
                in_sample_rate=self.cache.out_rate,
                context_id=context_id,
            ):
                await self.stop_ttfb_metrics()
                yield frame
        except Exception as exc:
            logger.error(f"{self}: cannot speak {text!r}: {exc}")
            metrics.speech_error("tts")
            yield ErrorFrame(error=f"TTS failed: {exc}")
        finally:
            await self.stop_ttfb_metrics()


def load_tts_service(spec: str, cache: PromptCache | None, **kwargs: Any) -> TTSService:
    """The TTS service named by ``spec`` (``TtsSettings.service``).

    ``"cached"`` (the default) is :class:`CachedTTSService` over ``cache``. Anything else
    must be ``"package.module:factory"``: the factory is called with ``**kwargs`` and
    must return a pipecat ``TTSService`` (a bank's licensed or cloud voice, say).
    """
    spec = spec.strip()
    if spec in ("", "cached"):
        if cache is None:
            raise ValueError("TTS service 'cached' needs a PromptCache")
        return CachedTTSService(cache, **kwargs)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"TTS service {spec!r}: use 'cached' or 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"TTS service {spec!r}: cannot import {module_name}: {exc}") from exc
    factory = module
    for part in attr.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise ValueError(f"TTS service {spec!r}: {module_name} has no {attr}") from None
    if not callable(factory):
        raise ValueError(f"TTS service {spec!r}: {attr} is not callable")
    service = factory(**kwargs)
    if not isinstance(service, TTSService):
        raise TypeError(
            f"TTS service {spec!r} returned {type(service).__name__}, not a pipecat TTSService"
        )
    return service
