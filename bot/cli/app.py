"""The ``bot`` command line."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli import (
    campaign_cmd,
    config_cmd,
    db_cmd,
    eval_cmd,
    models_cmd,
    nlu_cmd,
    scripts_cmd,
    voice_cmd,
    web_cmd,
    worker_cmd,
)
from bot.cli.common import console, setup_logging
from bot.config_check import for_demo
from bot.gateways import GatewayName

app = typer.Typer(
    help="Outbound-call investigation bot for banks' anti-fraud teams.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(scripts_cmd.app, name="scripts")
app.add_typer(nlu_cmd.app, name="nlu")
app.add_typer(db_cmd.app, name="db")
app.add_typer(campaign_cmd.app, name="campaign")
app.add_typer(models_cmd.app, name="models")
app.add_typer(config_cmd.app, name="config")
app.command("worker")(worker_cmd.worker_command)
app.command("eval")(eval_cmd.eval_command)
app.command("simulate")(eval_cmd.simulate_command)
app.command("call")(voice_cmd.call_command)
app.add_typer(web_cmd.app, name="users")
app.command("web")(web_cmd.web_command)


#: The installed distribution (pyproject.toml ``name``).
DISTRIBUTION = "callbot-investigator"


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"bot {version(DISTRIBUTION)}")
        except PackageNotFoundError:
            typer.echo("bot (version unknown: the package is not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging (PII masked)"),
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        expose_value=False,
        help="Print the version and exit",
    ),
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
    gateway: GatewayName = typer.Option(
        GatewayName.LOOPBACK,
        "--gateway",
        case_sensitive=False,
        help="loopback: real phone calls (Whisper, TTS) to simulated callees; simulated: text only",
    ),
    concurrency: int = typer.Option(3, "--concurrency", min=1, help="Calls at once"),
) -> None:
    """The demo campaign on the embedded defaults (SQLite, loopback gateway, bundled
    models): the public personas become an account list, which is imported, dialled
    to the end with live progress, stored, and summarised."""
    directory = personas or _shared_personas()
    if not directory.is_dir():
        console.print(f"[red]no persona directory at {directory}[/]; pass --personas DIR")
        raise typer.Exit(2)
    s = config_cmd.preflight(for_demo(gateway))  # before any model loads
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from bot.cli.campaign_cmd import status_table
    from bot.demo import run_demo
    from bot.runtime import build_investigator
    from bot.store.db import make_engine
    from bot.store.migrate import upgrade

    console.print(f"database {s.db_url}; loading models ...")
    upgrade(s.db_url)
    engine = make_engine(s.db_url)
    investigator = build_investigator(s)
    from bot.cli.worker_cmd import load_gateway

    line = (
        None
        if gateway == "simulated"
        else load_gateway(gateway, directory, investigator=investigator)
    )
    with Progress(
        TextColumn("[bold]calling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("calls", total=None)
        name, rows = run_demo(
            engine,
            investigator,
            directory,
            s.data_dir / "demo",
            on_call=lambda: bar.update(task, advance=1),
            on_total=lambda n: bar.update(task, total=n),
            gateway=line,
            concurrency=concurrency if line is not None else 1,
        )
    if line is not None:
        line.close()  # type: ignore[attr-defined]
    console.print(status_table(name, engine))
    table = Table("persona", "outcome", "band", "disposition", "review", "calls", "as expected")
    for r in rows:
        ok = r.outcome == r.expected_outcome and (
            r.expected_band is None or r.band == r.expected_band
        )
        table.add_row(
            r.persona, str(r.outcome), str(r.band or "-"), str(r.disposition), "yes" if r.needs_review else "no",
            str(r.calls), "[green]yes[/]" if ok else f"[red]no[/] (want {r.expected_outcome} {r.expected_band or ''})",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"campaign '{name}' stored in {s.db_url}; dispositions delivered to "
        f"{s.data_dir / 'demo' / 'dispositions.jsonl'}"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
