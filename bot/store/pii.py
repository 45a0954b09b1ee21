"""Personal numbers on their way into the database, and back out through a reveal.

Whatever a callee or a reviewer says is stored masked (:func:`bot.core.masking.mask_text`:
card numbers keep their last four digits, phones their first three and last four, IDs
their first and last character). When a key is configured
(:mod:`bot.store.pii_crypto`), the unmasked original of each value that masking changed
is sealed into ``pii_secret``, keyed by table, row and column; only
:func:`open_call` (the audited reveal) opens it again. Without a key the original is
simply not kept.

Writers go through a :class:`Redactor`: ``protect(row, "text")`` masks a column in place
and remembers its original; ``seal(session)``, after the rows are flushed (they need
their ids), adds the sealed originals to the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from sqlalchemy.engine import Connection
from sqlmodel import Session, SQLModel

from bot.core.masking import mask_data, mask_text
from bot.store.pii_crypto import KeyRing, PiiError, Sealed

log = logging.getLogger(__name__)

#: ``pii_secret`` as the writers and readers here see it (independent of the ORM
#: models, so that migrations can use it too).
SECRETS = sa.table(
    "pii_secret",
    sa.column("id", sa.Integer),
    sa.column("call_id", sa.Integer),
    sa.column("table_name", sa.String),
    sa.column("row_id", sa.Integer),
    sa.column("column_name", sa.String),
    sa.column("key_id", sa.String),
    sa.column("nonce", sa.LargeBinary),
    sa.column("ciphertext", sa.LargeBinary),
    sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime),
)

Cell = tuple[str, int, str]


def associated_data(table: str, row_id: int, column: str) -> bytes:
    """What binds a ciphertext to its cell: moved to another row or column, it fails."""
    return f"pii-v1/{table}/{row_id}/{column}".encode()


def secret_values(
    keys: KeyRing, call_id: int, cell: Cell, original: Any, now: dt.datetime | None = None
) -> dict[str, Any]:
    """One ``pii_secret`` row: ``original`` (any JSON value) sealed for ``cell``."""
    table, row_id, column = cell
    sealed = keys.seal(
        json.dumps(original, ensure_ascii=False), associated_data(table, row_id, column)
    )
    return {
        "call_id": call_id,
        "table_name": table,
        "row_id": row_id,
        "column_name": column,
        "key_id": sealed.key_id,
        "nonce": sealed.nonce,
        "ciphertext": sealed.ciphertext,
        "created_at": now or dt.datetime.now(dt.UTC),
    }


def mask_value(value: Any, masker: Callable[[str], str] = mask_text) -> Any:
    """A column's value masked: text by ``masker``, JSON with every string masked."""
    return masker(value) if isinstance(value, str) else mask_data(value)


@dataclass
class Redactor:
    """Masks the columns of rows about to be stored and, with ``keys``, seals their
    originals (all rows of one call, ``call_id``)."""

    keys: KeyRing | None
    call_id: int
    _kept: list[tuple[SQLModel, str, Any]] = field(default_factory=list)

    def protect(
        self, row: SQLModel, *columns: str, masker: Callable[[str], str] = mask_text
    ) -> None:
        """Mask ``columns`` of ``row`` in place; remember the originals that changed."""
        for column in columns:
            value = getattr(row, column)
            masked = mask_value(value, masker)
            if masked != value:
                setattr(row, column, masked)
                self.keep(row, column, value)

    def keep(self, row: SQLModel, column: str, original: Any) -> None:
        """Remember the original of a column the caller masked (or shifted) itself."""
        if self.keys is not None:
            self._kept.append((row, column, original))

    def seal(self, session: Session) -> int:
        """Add the sealed originals to ``session`` (rows flushed first); how many."""
        if self.keys is None or not self._kept:
            return 0
        values = []
        for row, column, original in self._kept:
            row_id = getattr(row, "id", None)
            if row_id is None:
                raise ValueError(f"{row.__tablename__}: flush the rows before sealing")
            cell = (str(row.__tablename__), int(row_id), column)
            values.append(secret_values(self.keys, self.call_id, cell, original))
        session.execute(sa.insert(SECRETS), values)
        self._kept.clear()
        return len(values)


# -- reveal -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """A call's sealed originals by cell, and how many could not be opened (no key
    configured, a retired key removed, or a ciphertext altered)."""

    values: dict[Cell, Any]
    failed: int = 0


def open_call(connection: Session | Connection, call_id: int, keys: KeyRing | None) -> Opened:
    """Every sealed original of ``call_id``, decrypted."""
    rows = connection.execute(
        sa.select(
            SECRETS.c.table_name, SECRETS.c.row_id, SECRETS.c.column_name,
            SECRETS.c.key_id, SECRETS.c.nonce, SECRETS.c.ciphertext,
        ).where(SECRETS.c.call_id == call_id)
    ).all()  # fmt: skip
    values: dict[Cell, Any] = {}
    failed = 0
    for r in rows:
        if keys is None:
            failed += 1
            continue
        try:
            text = keys.open(
                Sealed(r.key_id, bytes(r.nonce), bytes(r.ciphertext)),
                associated_data(r.table_name, r.row_id, r.column_name),
            )
        except PiiError as exc:
            log.warning("pii_secret %s/%s/%s: %s", r.table_name, r.row_id, r.column_name, exc)
            failed += 1
            continue
        values[(r.table_name, r.row_id, r.column_name)] = json.loads(text)
    return Opened(values, failed)


def restore(session: Session, rows: Iterable[SQLModel | None], opened: Opened) -> int:
    """Put the opened originals into loaded ``rows`` for one response; how many values.

    Each row that gets one is detached from ``session`` first, so its unmasked values
    are never flushed back to the database.
    """
    by_row: dict[tuple[str, int], list[tuple[str, Any]]] = {}
    for (table, cell_row, column), value in opened.values.items():
        by_row.setdefault((table, cell_row), []).append((column, value))
    restored = 0
    for row in rows:
        row_id = getattr(row, "id", None)
        if row is None or row_id is None:
            continue
        cells = by_row.get((str(row.__tablename__), int(row_id)))
        if not cells:
            continue
        if row in session:
            session.expunge(row)
        for column, value in cells:
            setattr(row, column, value)
            restored += 1
    return restored
