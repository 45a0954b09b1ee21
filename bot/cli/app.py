"""The ``bot`` command line."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli import db_cmd, eval_cmd, nlu_cmd, scripts_cmd, worker_cmd
from bot.cli.common import console, setup_logging

app = typer.Typer(
    help="Outbound-call investigation bot for banks' anti-fraud teams.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(scripts_cmd.app, name="scripts")
app.add_typer(nlu_cmd.app, name="nlu")
app.add_typer(db_cmd.app, name="db")
app.command("worker")(worker_cmd.worker_command)
app.command("eval")(eval_cmd.eval_command)
app.command("simulate")(eval_cmd.simulate_command)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging (PII masked)"),
) -> None:
    setup_logging(verbose)


def _shared_personas() -> Path:
    import os

    from bot.settings import REPO_ROOT

    return Path(os.environ.get("BOT_SHARED_DIR", REPO_ROOT.parent / "shared")) / "personas"


@app.command("demo")
def demo(
    personas: Path | None = typer.Option(
        None, "--personas", help="Persona directory (default: ../shared/personas)"
    ),
    report: Path = typer.Option(Path("reports/demo.json"), "--report"),
) -> None:
    """The demo campaign on the embedded defaults: every public persona is investigated
    in text mode and the results are shown as a table (the voice path, the campaign
    database and the dashboard come with their own issues)."""
    directory = personas or _shared_personas()
    if not directory.is_dir():
        console.print(f"[red]no persona directory at {directory}[/]; pass --personas DIR")
        raise typer.Exit(2)
    eval_cmd.eval_command(
        directory, mode="text", report=report, audio_dir=None, audio_suffix=".wav", quiet=False
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
