"""Voice-path commands: ``bot call`` (one loopback call, live) and ``bot eval --mode audio``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.live import Live
from rich.table import Table

from bot.cli.common import console, fail, settings
from bot.core.masking import mask_text

if TYPE_CHECKING:
    from bot.evaluation import PersonaCase

T = TypeVar("T")


def with_line(work: Callable[[Any], Coroutine[Any, Any, T]], *, prerender: bool = True) -> T:
    """Build the voice stack, start the media server, run ``work(line)`` on a loopback line."""
    from bot.runtime import build_investigator
    from bot.voice.logs import configure_pipecat_logging

    configure_pipecat_logging()
    from bot.voice.loopback import LoopbackLine
    from bot.voice.runtime import build_voice_stack, close_stack, prerender_prompts
    from bot.voice.server import VoiceServer

    s = settings()
    investigator = build_investigator(s)
    stack, cache = build_voice_stack(s, investigator)
    if cache is not None and prerender:
        with console.status("rendering the fixed prompts into the TTS cache ..."):
            new, cached = prerender_prompts(cache, investigator)
        if new:
            console.print(f"TTS cache: {new} clauses rendered, {cached} already cached")

    async def main() -> T:
        async with VoiceServer(stack, host=s.voice.host, port=s.voice.port) as server:
            return await work(LoopbackLine(server))

    try:
        return asyncio.run(main())
    finally:
        if cache is not None:
            close_stack(cache)


def audio_eval(
    cases: list[PersonaCase],
    load_errors: list[str],
    audio_dir: Path,
    suffix: str,
    *,
    voices: dict[str, Path] | Callable[[PersonaCase], tuple[str, Path]] | None = None,
) -> dict[str, Any]:
    """The audio evaluation of ``cases`` from ``audio_dir`` (one voice), or, with
    ``voices``, once per voice directory or in each persona's own voice."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bot.voice.evaluation import evaluate_audio, evaluate_voices

    calls = len(cases) * (len(voices) if isinstance(voices, dict) else 1)

    async def work(line: Any) -> dict[str, Any]:
        with Progress(
            TextColumn("[bold]calling"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("calls", total=calls, last="")

            def progress(pid: str) -> None:
                bar.update(task, advance=1, last=pid)

            if voices is not None:
                return await evaluate_voices(
                    line,
                    cases,
                    voices,
                    load_errors,
                    suffix=suffix,
                    progress=progress,
                    root=audio_dir,
                )
            return await evaluate_audio(
                line, cases, audio_dir, load_errors, suffix=suffix, progress=progress
            )

    return with_line(work)


def call_command(
    persona: Path = typer.Option(
        ..., "--persona", exists=True, dir_okay=False, help="Persona YAML file"
    ),
    audio_dir: Path | None = typer.Option(
        None, "--audio-dir", help="Its answers' audio (default: audio/<id> beside the file)"
    ),
    audio_suffix: str = typer.Option(".wav", "--audio-suffix"),
    report: Path | None = typer.Option(None, "--report", help="Also write the call as JSON"),
) -> None:
    """Place one loopback call to a persona and show the conversation live."""
    from bot.core.yamlsource import SourceFileError
    from bot.sim.personas import load_persona

    try:
        p = load_persona(persona)
    except SourceFileError as exc:
        fail(str(exc))
    directory = audio_dir or persona.parent / "audio" / p.id
    if not directory.is_dir():
        fail(f"no audio directory {directory}; pass --audio-dir")
    table = Table("s", "who", "topic", "said", title=f"call to {p.id}", expand=True)
    live = Live(table, console=console, refresh_per_second=8)

    def on_turn(role: str, topic: str, text: str, at: float) -> None:
        colour = "cyan" if role == "bot" else "green"
        table.add_row(f"{at:5.1f}", f"[{colour}]{role}[/]", topic, mask_text(text))

    async def work(line: Any) -> Any:
        with live:
            return await line.call_persona(
                p.account, p.answers, directory, suffix=audio_suffix, on_turn=on_turn
            )

    call = with_line(work)
    result = call.voice.result
    band = result.assessment.band.value if result.assessment.band else "-"
    console.print(
        f"outcome [bold]{result.record.outcome}[/]  band [bold]{band}[/] "
        f"(score {result.assessment.score:.2f})  disposition [bold]{result.decision.disposition}[/]"
    )
    lat = call.callee.latencies_ms()
    if lat:
        console.print(f"turn latency ms: {', '.join(f'{v:.0f}' for v in lat)}")
    if call.voice.recording_path:
        console.print(f"recording: {call.voice.recording_path}")
    if call.voice.error:
        console.print(f"[yellow]line:[/] {call.voice.error}")
    if report:
        from bot.evaluation import persona_entry
        from bot.voice.evaluation import audio_section

        entry = persona_entry(p.to_case(), result) | {"audio": audio_section(call)}
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(entry, ensure_ascii=False, indent=2), encoding="utf-8")
