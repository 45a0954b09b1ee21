"""Voice-path settings (nested into :class:`bot.settings.Settings` as ``settings.voice``).

Environment variables follow the nesting: ``BOT_VOICE__VAD_STOP_SECS=0.25`` ...
Plain data only, so loading settings stays cheap. The defaults are tuned for Mandarin
on an 8 kHz phone line and the 2-core reference machine (see ``docs/voice.md``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class VoiceSettings(BaseModel):
    #: Silero VAD: speech probability threshold, and how long speech / silence must last
    #: before the callee counts as talking / done talking. ``vad_stop_secs`` is paid on
    #: every turn's latency; below ~0.25 s callees get cut off in mid-sentence pauses.
    vad_confidence: float = Field(0.6, gt=0, lt=1)
    vad_start_secs: float = Field(0.1, gt=0)
    vad_stop_secs: float = Field(0.2, gt=0)
    vad_min_volume: float = Field(0.5, ge=0, le=1)
    #: How the end of the callee's turn is decided: ``timeout`` = ``user_speech_timeout``
    #: of silence after the VAD stops; ``smart_turn`` = pipecat's Smart Turn v3 model
    #: judges from the audio whether the sentence is finished (multilingual, bundled).
    turn_stop: Literal["timeout", "smart_turn"] = "timeout"
    #: After the VAD stops, how long more silence closes the turn (a pause inside an
    #: answer shorter than this joins both halves into one answer).
    user_speech_timeout: float = Field(0.55, ge=0)
    #: At the identity question, how long an answer that may be only its start (a
    #: question back "谁？", a two-character fragment with no yes, a short yes heard with
    #: a question back) waits for the rest before it is answered; 0 = never wait
    #: (``bot/voice/processor.py``).
    identity_hold_s: float = Field(0.8, ge=0)
    #: At the identity question, answer a plain yes ("是的", "对，是我") as soon as it is
    #: transcribed instead of waiting out ``user_speech_timeout`` (``processor.py``).
    #: Off: measured, a stranger's "喂，你好，鸿发五金" heard as "对" was answered before the
    #: rest of the sentence said it was a shop (``docs/voice.md``).
    early_answer: bool = False
    #: smart_turn: the longest silence waited for when the model says "not finished".
    smart_turn_max_silence_s: float = Field(1.5, gt=0)
    #: Silence appended to each speech segment so Whisper hears the last syllable end.
    trailing_silence_secs: float = Field(0.2, ge=0)
    #: Seconds of quiet after a prompt has played that count as "no input".
    no_input_s: float = Field(6.0, gt=0)
    #: A gateway that connects but sends no ``start`` within this is dropped.
    start_timeout_s: float = Field(10.0, gt=0)
    #: Seconds without any media from the gateway after which the line counts as dead.
    media_timeout_s: float = Field(15.0, gt=0)
    #: Hard stop for one call, whatever happens (the dialogue budget ends calls first).
    max_call_s: float = Field(900.0, gt=0)
    #: Record calls (callee left, bot right, 8 kHz stereo WAV) under the recordings dir.
    record: bool = True
    #: Whisper decoding threads per transcription and parallel transcriptions.
    asr_cpu_threads: int = Field(0, ge=0)
    asr_num_workers: int = Field(1, ge=1)
    #: Whisper beam width on every turn (1 = greedy; 5 measured ~15 % more decode time
    #: for a small CER gain: docs/voice.md). The identity question always decodes with a
    #: beam of at least 3 and the holder's name as hotwords.
    asr_beam_size: int = Field(1, ge=1, le=10)
    #: Where Whisper runs: ``cpu``, ``cuda`` (a GPU: CTranslate2's PyPI wheel has CUDA
    #: support) or ``auto``, and CTranslate2's compute type there (``int8`` on a CPU;
    #: ``float16`` or ``int8_float16`` on a GPU). Nothing depends on a GPU.
    asr_device: Literal["cpu", "cuda", "auto"] = "cpu"
    asr_compute_type: str = "int8"
    #: The process's ASR service decodes segments of simultaneous calls together: at most
    #: this many in one decode (1 = one at a time; a GPU takes far more than a CPU) ...
    asr_batch_size: int = Field(8, ge=1, le=64)
    #: ... the oldest waiting at most this long for others to join its batch.
    asr_batch_wait_ms: float = Field(15.0, ge=0, le=200)
    #: Back-pressure: while segments wait longer than this for the recogniser (moving
    #: p95), ``bot worker`` starts no new calls (those in progress go on) until the wait
    #: is under half of it again. 0 = never hold calls back.
    asr_max_queue_delay_ms: float = Field(300.0, ge=0)
    #: Where the media WebSocket listens (the loopback gateway and ``bot serve``).
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0 = any free port
    #: ``bot worker`` serves Prometheus metrics on this port of ``host`` (0 = off).
    metrics_port: int = Field(0, ge=0, le=65535)
