"""``bot eval --mode audio``: every persona as a full phone call through the loopback gateway.

Each persona is called over a real WebSocket in the Twilio protocol; its callee plays
``<audio-dir>/<persona id>/<topic><suffix>`` for the topic named in the bot's ``mark``
(``default`` otherwise, silence where there is none). The report is the text mode's
(``bot.evaluation.persona_entry``) plus, per persona, an ``audio`` section (what the
callee said and what Whisper heard, CER, per-turn latencies, recording) and, in the
summary, ``cer`` and ``turn_latency_ms`` ``{p50, p95}`` as the contract in
``../shared/design.md`` asks.

Many voices (``bot.sim.voices``): :func:`evaluate_voices` calls every persona once per
voice directory of a fixture root, or once in the voice each persona names; each entry
then carries ``voice`` and the summary a ``voices`` section (the same figures per voice).

Turn latency is measured on the callee's side of the line, from the end of its speech
(the last voiced 20 ms frame it sent) to the first bot audio that reached it: what a
person on the phone would experience, network included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bot.evaluation import PersonaCase, error_entry, persona_entry, summarise
from bot.speech import cer, comparable
from bot.voice.loopback import LoopbackCall, LoopbackLine

Progress = Callable[[str], None]
#: Where a persona's clips are: ``<audio-dir>/<id>`` for a directory, or a function.
ClipSource = Path | Callable[[PersonaCase], Path]
#: The per-voice figures of the report (a subset of the summary's keys).
VOICE_FIELDS = (
    "n",
    "passed",
    "outcome_accuracy",
    "risk_band_accuracy",
    "entity_recall",
    "strangers_confirmed",
    "cer",
    "turn_latency_ms",
    "failed",
    "errors",
)


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    data = np.asarray(list(values), dtype=float)
    if data.size == 0:
        return {"p50": None, "p95": None, "n": 0}
    return {
        "p50": round(float(np.percentile(data, 50)), 1),
        "p95": round(float(np.percentile(data, 95)), 1),
        "n": int(data.size),
    }


def audio_section(call: LoopbackCall) -> dict[str, Any]:
    reference = call.callee.reference_text()
    heard = "".join(text for text, _ in call.voice.transcripts)
    return {
        "reference": reference,
        "heard": heard,
        "cer": round(cer(reference, heard), 4) if reference else None,
        "ref_chars": len(comparable(reference)),
        "turn_latency_ms": call.callee.latencies_ms(),
        "bot_side_latency_ms": call.voice.latencies_ms,
        # from the dialogue's answer to its first audio on the wire (TTS + transport)
        "reply_to_audio_ms": [
            round((t.first_audio - t.replied) * 1000, 1)
            for t in call.voice.timeline.turns
            if t.first_audio is not None and t.replied is not None
        ],
        "asr_seconds": [round(s, 3) for _, s in call.voice.transcripts],
        "marks": call.callee.marks,
        # Twilio `clear` messages the callee got: pipecat interrupts whenever the callee
        # starts to speak, mostly after the prompt has already finished playing
        "clears": call.callee.clears,
        "duration_s": round(call.voice.duration_s, 2),
        "recording": str(call.voice.recording_path) if call.voice.recording_path else None,
        "line_error": call.voice.error,
    }


async def run_audio_cases(
    line: LoopbackLine,
    cases: Iterable[PersonaCase],
    audio_dir: ClipSource,
    *,
    suffix: str = ".wav",
    progress: Progress | None = None,
    voice: str | Callable[[PersonaCase], str] | None = None,
) -> list[dict[str, Any]]:
    """One call per case; ``voice`` (a name, or a function of the case) tags each entry."""
    entries: list[dict[str, Any]] = []
    for case in cases:
        clips = audio_dir(case) if callable(audio_dir) else audio_dir / case.id
        try:
            call = await line.call_persona(case.account, case.answers, clips, suffix=suffix)
            entry = persona_entry(case, call.voice.result)
            entry["audio"] = audio_section(call)
        except Exception as exc:  # one broken persona must not stop the run
            entry = error_entry(case, exc)
        if voice is not None:
            entry["voice"] = voice(case) if callable(voice) else voice
        entries.append(entry)
        if progress:
            progress(case.id if voice is None else f"{entry['voice']}/{case.id}")
    return entries


def summarise_audio(entries: list[dict[str, Any]], load_errors: list[str]) -> dict[str, Any]:
    summary = summarise(entries, load_errors)
    audio = [e["audio"] for e in entries if "audio" in e]
    chars = sum(a["ref_chars"] for a in audio if a["cer"] is not None)
    edits = sum(a["cer"] * a["ref_chars"] for a in audio if a["cer"] is not None)
    summary["cer"] = round(edits / chars, 4) if chars else None
    summary["turn_latency_ms"] = percentiles(v for a in audio for v in a["turn_latency_ms"])
    summary["bot_side_latency_ms"] = percentiles(v for a in audio for v in a["bot_side_latency_ms"])
    summary["asr_ms"] = percentiles(v * 1000 for a in audio for v in a["asr_seconds"])
    summary["reply_to_audio_ms"] = percentiles(v for a in audio for v in a["reply_to_audio_ms"])
    summary["line_errors"] = [
        f"{e['id']}: {e['audio']['line_error']}"
        for e in entries
        if e.get("audio", {}).get("line_error")
    ]
    return summary


def summarise_voices(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Voice name -> the summary's figures over that voice's entries (in first-seen order)."""
    names = list(dict.fromkeys(e["voice"] for e in entries if "voice" in e))
    out = {}
    for name in names:
        summary = summarise_audio([e for e in entries if e.get("voice") == name], [])
        out[name] = {k: summary[k] for k in VOICE_FIELDS}
    return out


async def evaluate_voices(
    line: LoopbackLine,
    cases: list[PersonaCase],
    voices: dict[str, Path] | Callable[[PersonaCase], tuple[str, Path]],
    load_errors: list[str],
    *,
    suffix: str = ".wav",
    progress: Progress | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """Every persona in every voice of ``voices`` (name -> fixture directory), or each
    persona once in the voice a function picks for it (name, its clip directory)."""
    started = time.perf_counter()
    entries: list[dict[str, Any]] = []
    if callable(voices):
        pick = voices
        entries = await run_audio_cases(
            line,
            cases,
            lambda c: pick(c)[1],
            suffix=suffix,
            progress=progress,
            voice=lambda c: pick(c)[0],
        )
    else:
        for name, directory in voices.items():
            entries += await run_audio_cases(
                line, cases, directory, suffix=suffix, progress=progress, voice=name
            )
    summary = summarise_audio(entries, load_errors)
    summary["voices"] = summarise_voices(entries)
    summary.update(
        mode="audio",
        audio_dir=str(root) if root else None,
        seconds=round(time.perf_counter() - started, 1),
    )
    return {"summary": summary, "personas": entries}


async def evaluate_audio(
    line: LoopbackLine,
    cases: list[PersonaCase],
    audio_dir: Path,
    load_errors: list[str],
    *,
    suffix: str = ".wav",
    progress: Progress | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    entries = await run_audio_cases(line, cases, audio_dir, suffix=suffix, progress=progress)
    summary = summarise_audio(entries, load_errors)
    summary.update(
        mode="audio", audio_dir=str(audio_dir), seconds=round(time.perf_counter() - started, 1)
    )
    return {"summary": summary, "personas": entries}
