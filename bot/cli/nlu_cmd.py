"""``bot nlu``: train and inspect the NLU models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import console, fail, settings
from nlu.types import NluContext

app = typer.Typer(help="Train and inspect the NLU models.", no_args_is_help=True)
T = TypeVar("T")


@app.command("train")
def train(
    out: Path | None = typer.Option(
        None, "--out", help="Intent model directory (default: settings.intent_model_dir)"
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Directory with the intent corpus (train.tsv, heldout.tsv)"
    ),
    epochs: int = typer.Option(20, "--epochs", min=1),
    seed: int = typer.Option(0, "--seed"),
    intent: bool = typer.Option(True, "--intent/--no-intent", help="Train the intent model"),
    reading: bool = typer.Option(
        True, "--reading/--no-reading", help="Train the answer-reading model"
    ),
    reading_out: Path | None = typer.Option(
        None,
        "--reading-out",
        help="Reading model directory (default: settings.reading_model_dir)",
    ),
    feedback: list[Path] = typer.Option(
        [],
        "--feedback",
        exists=True,
        dir_okay=False,
        help="Reviewers' corrections (the dashboard's /feedback/reading.jsonl); repeatable",
    ),
    personas: Path | None = typer.Option(
        None,
        "--eval-personas",
        file_okay=False,
        help="Also evaluate the new reading model on these personas (default: "
        "eval_personas/heldout when it exists)",
    ),
) -> None:
    """Train the NLU models: the answer-reading model from nlu/reading/corpus (plus any
    --feedback corrections) and the intent classifier. The reading model's report (held-out
    answers and personas) lands beside it, ready for `bot nlu models submit`."""
    s = settings()
    if reading:
        _train_reading(reading_out or s.reading_model_dir, feedback, personas)
    if intent:
        _train_intent(out or s.intent_model_dir, corpus, epochs, seed)


def _train_reading(target: Path, feedback: list[Path], personas: Path | None) -> None:
    import json

    from bot.settings import REPO_ROOT
    from nlu.reading.train import train_and_save

    summary = train_and_save(out_dir=target, feedback=feedback)
    held = summary["heldout"] or {}
    console.print(
        f"reading model {summary['version']}: {summary['n_train']} answers "
        f"({summary['n_feedback']} corrections); held-out answers n={held.get('n')} "
        f"micro-F1 {held.get('micro_f1')} macro-F1 {held.get('macro_f1')}"
    )
    for problem in summary["corpus_errors"]:
        console.print(f"[yellow]skipped[/] {problem}", highlight=False)
    persona_dir = personas or REPO_ROOT / "eval_personas" / "heldout"
    if persona_dir.is_dir():
        from bot.cli.eval_cmd import load_cases
        from bot.evaluation import run_cases, summarise
        from bot.runtime import build_investigator

        cases, errors = load_cases(persona_dir)
        investigator = build_investigator(
            settings().model_copy(update={"reading_model_dir": target})
        )
        result = summarise(run_cases(investigator, cases), errors)
        keys = ("n", "outcome_accuracy", "risk_band_accuracy", "entity_recall", "low_suspended")
        summary["personas"] = {"dir": str(persona_dir)} | {k: result[k] for k in keys}
        (target / "training_report.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        console.print(
            "held-out personas: " + "  ".join(f"{k}={result[k]}" for k in keys), highlight=False
        )
    console.print(f"saved to {target}")


def _train_intent(target: Path, corpus: Path | None, epochs: int, seed: int) -> None:
    import nlu.intent.train as trainer

    with Progress(
        TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("train", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = trainer.train(
            corpus or trainer.CORPUS_DIR,
            target,
            epochs=epochs,
            seed=seed,
            progress=tick,
        )
    console.print(report)
    console.print(f"saved to {target}")


models = typer.Typer(help="Reading-model versions: submit, approve (a second person), list.")
app.add_typer(models, name="models")


def _engine() -> Any:
    from bot.store.db import make_engine

    return make_engine(settings().db_url)


def _registry(step: Callable[..., T], *args: Any) -> T:
    """One registry step on the configured database; a refusal is a clear error (exit 2)."""
    from bot.nlu_registry import RegistryError

    try:
        return step(_engine(), *args)
    except RegistryError as exc:
        fail(str(exc))


@models.command("list")
def models_list() -> None:
    """Every registered version, newest first, with its state and held-out figures."""
    from bot.nlu_registry import versions

    table = Table("version", "state", "author", "approved by", "answers F1", "personas band")
    for row in versions(_engine()):
        held = (row.report or {}).get("heldout") or {}
        people = (row.report or {}).get("personas") or {}
        table.add_row(
            row.version,
            row.state,
            row.author,
            row.approved_by or "",
            str(held.get("micro_f1", "")),
            str(people.get("risk_band_accuracy", "")),
        )
    console.print(table)


@models.command("submit")
def models_submit(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False),
    by: str = typer.Option(..., "--by", help="The submitting user (a dashboard user)"),
) -> None:
    """Store a trained reading model as a pending version."""
    from bot.nlu_registry import submit

    row = _registry(submit, model_dir, by)
    console.print(f"{row.version} pending (sha256 {row.digest[:12]}…): a second person approves")


@models.command("approve")
def models_approve(
    version: str = typer.Argument(...),
    by: str = typer.Option(..., "--by", help="The approving user: not the author"),
) -> None:
    """Publish a pending version (workers with reading_model_source=database load it at
    their next start)."""
    from bot.nlu_registry import approve

    row = _registry(approve, version, by)
    console.print(f"{row.version} published by {row.approved_by}")


@models.command("reject")
def models_reject(
    version: str = typer.Argument(...),
    by: str = typer.Option(..., "--by"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Turn a pending version down."""
    from bot.nlu_registry import reject

    row = _registry(reject, version, by, reason)
    console.print(f"{row.version} rejected")


@app.command("analyze")
def analyze(
    text: str = typer.Argument(...),
    topic: str = typer.Option("default", "--topic"),
    names: list[str] = typer.Option([], "--name", help="Known names (holder, counterparty)"),
) -> None:
    """Show what the NLU makes of one utterance."""
    from bot.runtime import reading_model_path
    from nlu.analyzer import Analyzer

    s = settings()
    analyzer = Analyzer(
        s.intent_model_dir if s.intent_model_enabled else None,
        reading_model_dir=reading_model_path(s),
    )
    result = analyzer.analyze(text, NluContext(topic=topic, known_names=tuple(names)))
    console.print(f"normalised: {result.text}")
    console.print(
        f"intent: {result.intent.intent.value} ({result.intent.confidence:.2f}, {result.intent.source})"
    )
    reading = Table("reading", "confidence", "words", "source", title=result.reading.model_version)
    for slot in result.reading.slots:
        reading.add_row(slot.label, f"{slot.confidence:.2f}", "、".join(slot.words), slot.source)
    console.print(reading)
    table = Table("label", "text", "value", "negated")
    for e in result.entities:
        table.add_row(e.label.value, e.text, e.value, "yes" if e.negated else "")
    console.print(table)
