"""``bot nlu``: train and inspect the NLU models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import console, settings
from nlu.types import NluContext

app = typer.Typer(help="Train and inspect the NLU models.", no_args_is_help=True)


@app.command("train")
def train(
    out: Path | None = typer.Option(
        None, "--out", help="Model directory (default: settings.intent_model_dir)"
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="Directory with train.tsv and heldout.tsv"
    ),
    epochs: int = typer.Option(20, "--epochs", min=1),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train the intent classifier from the labelled corpus and save_pretrained it."""
    import nlu.intent.train as trainer

    target = out or settings().intent_model_dir
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


@app.command("analyze")
def analyze(
    text: str = typer.Argument(...),
    topic: str = typer.Option("default", "--topic"),
    names: list[str] = typer.Option([], "--name", help="Known names (holder, counterparty)"),
) -> None:
    """Show what the NLU makes of one utterance."""
    from nlu.analyzer import Analyzer

    s = settings()
    analyzer = Analyzer(s.intent_model_dir if s.intent_model_enabled else None)
    result = analyzer.analyze(text, NluContext(topic=topic, known_names=tuple(names)))
    console.print(f"normalised: {result.text}")
    console.print(
        f"intent: {result.intent.intent.value} ({result.intent.confidence:.2f}, {result.intent.source})"
    )
    table = Table("label", "text", "value", "negated")
    for e in result.entities:
        table.add_row(e.label.value, e.text, e.value, "yes" if e.negated else "")
    console.print(table)
