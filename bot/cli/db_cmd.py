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


@app.command("mask-pii")
def mask_pii() -> None:
    """Mask card, ID and phone numbers in stored callee and reviewer text (migration 0007
    does it once; run again after a rolling upgrade). With BOT_PII__KEY set the originals
    are sealed, else dropped. Safe to repeat."""
    from bot.store.db import make_engine
    from bot.store.pii_backfill import mask_stored
    from bot.store.pii_crypto import process_keyring

    url = settings().db_url
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            counts = mask_stored(conn, process_keyring())
    finally:
        engine.dispose()
    changed = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to mask"
    console.print(f"database at {_where(url)}: {changed}")


@app.command("link-entities")
def link_entities(
    rebuild: bool = typer.Option(False, help="drop every link first (after a PII key rotation)"),
) -> None:
    """Build the accounts' network for what was stored before it existed: the accounts'
    own data and the entities of stored calls. Numbers said in calls link only when
    their sealed original opens (BOT_PII__KEY); without a key no number links. Safe to
    repeat."""
    from bot.store.db import make_engine
    from bot.store.links import process_link_key
    from bot.store.links_backfill import link_stored
    from bot.store.pii_crypto import process_keyring

    url = settings().db_url
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            counts = link_stored(conn, process_link_key(), process_keyring(), rebuild=rebuild)
    finally:
        engine.dispose()
    parts = ", ".join(
        f"{k} {counts[k]}" for k in ("accounts", "calls", "links", "masked", "no_key", "stale")
    )
    console.print(f"database at {_where(url)}: {parts}")
