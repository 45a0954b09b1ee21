"""pipecat speech-to-text service on the shared :class:`~bot.voice.asr.Transcriber`.

A :class:`SegmentedSTTService`: pipecat buffers the audio between the VAD's start and
stop events and hands each segment to :meth:`run_stt`; we decode it with our tuned
settings (pipecat's own ``WhisperSTTService`` loads a model per call and passes no
beam size or token cap) off the event loop: through the process's ASR service when one
runs in front of the transcriber (it batches the segments of simultaneous calls:
``bot.voice.asr_service``), else in a thread of its own.

The dialogue tells it, with a :class:`DecodeHintFrame` sent upstream, what the next
answer may contain (the holder's name at the identity question); the hint holds until
the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pipecat.frames.frames import (
    DataFrame,
    Frame,
    SystemFrame,
    TranscriptionFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.utils.time import time_now_iso8601

from bot import metrics
from bot.voice.asr import DecodeHint, Transcriber, Transcript
from bot.voice.asr_service import service_for
from bot.voice.audio import to_float


@dataclass
class SegmentTranscribed(DataFrame):
    """Follows every segment's transcript, even an empty one, so the dialogue knows when
    all the speech of a turn has been transcribed (``seq`` counts from 1)."""

    seq: int
    text: str
    #: The recogniser's other hypotheses for the segment (hinted decodes only).
    alternatives: tuple[str, ...] = ()


@dataclass
class DecodeHintFrame(SystemFrame):
    """Upstream, from the dialogue: decode the following segments with ``hint`` (None:
    none). A system frame, so it is not queued behind a segment being decoded."""

    hint: DecodeHint | None


class LocalWhisperSTT(SegmentedSTTService):
    def __init__(
        self, transcriber: Transcriber, *, trailing_silence_secs: float = 0.2, **kwargs: Any
    ) -> None:
        super().__init__(
            settings=STTSettings(
                model=str(transcriber.model_dir), language=transcriber.options.language
            ),
            trailing_silence_secs=trailing_silence_secs,
            ttfs_p99_latency=1.0,
            **kwargs,
        )
        self._transcriber = transcriber
        self._service = service_for(transcriber)
        #: Every segment's transcript with its decode time (the session keeps them).
        self.transcripts: list[tuple[str, float]] = []
        #: Segments handed to transcription so far (the VAD's stops).
        self.segments_queued = 0
        self.hint: DecodeHint | None = None

    @property
    def wants_wav_segments(self) -> bool:
        return False  # raw 16-bit PCM, not a WAV upload

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, DecodeHintFrame):
            self.hint = frame.hint  # consumed here: nothing upstream needs it
            return
        await super().process_frame(frame, direction)

    async def _handle_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        if self.is_usable:  # pipecat queues the segment exactly then
            self.segments_queued += 1
        await super()._handle_user_stopped_speaking(frame)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        await self.start_processing_metrics()
        with metrics.counting_errors("asr"):
            result = await self._decode(to_float(audio))
        await self.stop_processing_metrics()
        metrics.segment_decoded(result.seconds)
        self.transcripts.append((result.text, result.seconds))
        if result.text:
            yield TranscriptionFrame(result.text, self._user_id, time_now_iso8601())
        yield SegmentTranscribed(len(self.transcripts), result.text, result.alternatives)

    async def _decode(self, samples: np.ndarray) -> Transcript:
        if self._service is not None:
            return await self._service.transcribe_async(samples, self.sample_rate, self.hint)
        return await asyncio.to_thread(
            self._transcriber.transcribe, samples, self.sample_rate, self.hint
        )
