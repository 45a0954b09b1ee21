"""``bot db``: create and migrate the database."""

from __future__ import annotations

import typer

from bot.cli.common import console, settings
from bot.core.masking import mask_text

app = typer.Typer(help="Create and migrate the database.", no_args_is_help=True)


def _where(url: str) -> str:
    """The URL without credentials, for messages."""
    head, _, tail = url.rpartition("@")
    return mask_text(tail if head else url)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the latest). Safe to repeat."""
    from bot.store.migrate import upgrade as run

    url = settings().db_url
    run(url, revision)
    console.print(f"database at {_where(url)} is at revision {revision}")


@app.command("downgrade")
def downgrade(revision: str = typer.Argument(...)) -> None:
    """Roll migrations back to REVISION ("base" empties the database)."""
    from bot.store.migrate import downgrade as run

    url = settings().db_url
    run(url, revision)
    console.print(f"database at {_where(url)} is at revision {revision}")
