"""Run Alembic migrations programmatically (``bot db upgrade``), no alembic.ini needed."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    # Alembic's default ``stdout`` is bound when alembic is imported; hand it the stream
    # that is current now (a test runner may have swapped and closed the original).
    cfg = Config(stdout=sys.stdout)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # The config is a ConfigParser: a percent-encoded URL (a password with "@", PostgreSQL
    # options) needs its "%" doubled, or setting it raises.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    """Migrate through an open connection (e.g. one bound to a PostgreSQL schema)."""
    cfg = alembic_config(str(connection.engine.url))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def revision(url: str, message: str) -> None:
    """Autogenerate a migration from the models (developers: after changing models.py)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
