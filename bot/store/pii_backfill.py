"""Masking what was stored before numbers were masked on the way in (migration 0007,
``bot db mask-pii``): turns, entities, score explanations, verdicts and call errors.

Each changed value's original is sealed into ``pii_secret`` when ``keys`` are given (the
key configured when the migration runs), else it is dropped. Idempotent: masked text
masks to itself, so a second run changes nothing; it also catches rows written by a
worker of an older version during a rolling upgrade. Rows are read in keyset batches
of ``batch``, so memory stays flat on a large database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from bot.core.masking import mask_entity, mask_text, mask_tracked
from bot.store.pii import SECRETS, Cell, mask_value, secret_values
from bot.store.pii_crypto import KeyRing

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")

# The columns this module touches, independent of the ORM models (migrations use it).
TURN = sa.table(
    "turn", sa.column("id", sa.Integer), sa.column("call_id", sa.Integer),
    sa.column("idx", sa.Integer), sa.column("text", sa.Text), sa.column("decision", sa.Text),
)  # fmt: skip
ENTITY = sa.table(
    "extracted_entity", sa.column("id", sa.Integer), sa.column("call_id", sa.Integer),
    sa.column("turn_idx", sa.Integer), sa.column("label", sa.String),
    sa.column("value", sa.Text), sa.column("text", sa.Text),
    sa.column("start", sa.Integer), sa.column("end", sa.Integer),
)  # fmt: skip
RISK = sa.table(
    "risk_assessment", sa.column("id", sa.Integer), sa.column("call_id", sa.Integer),
    sa.column("band_reason", sa.Text), sa.column("explanation", _JSON),
)  # fmt: skip
VERDICT = sa.table(
    "verdict", sa.column("id", sa.Integer), sa.column("review_item_id", sa.Integer),
    sa.column("reason", sa.Text), sa.column("turn_corrections", _JSON),
)  # fmt: skip
REVIEW_ITEM = sa.table("review_item", sa.column("id", sa.Integer), sa.column("call_id", sa.Integer))
CALL = sa.table("call_attempt", sa.column("id", sa.Integer), sa.column("error", sa.Text))


class _Writer:
    """Updates and sealed originals for one run, with counts."""

    def __init__(self, conn: Connection, keys: KeyRing | None) -> None:
        self.conn, self.keys = conn, keys
        self.now = dt.datetime.now(dt.UTC)
        #: The ids of the rows changed, by table (an entity can be updated twice: its
        #: offsets when its turn is masked, then its own text and value).
        self.masked: dict[str, set[int]] = {}
        self.sealed = 0

    def update(
        self, table: sa.TableClause, row_id: int, call_id: int, changes: dict[str, tuple[Any, Any]]
    ) -> None:
        """Set each column of ``changes`` (column -> (original, masked)) on one row."""
        if not changes:
            return
        self.conn.execute(
            sa.update(table)
            .where(table.c.id == row_id)
            .values({c: masked for c, (_, masked) in changes.items()})
        )
        self.masked.setdefault(table.name, set()).add(row_id)
        if self.keys is None:
            return
        cells: list[Cell] = [(table.name, row_id, c) for c in changes]
        have = {
            (r.table_name, r.row_id, r.column_name)
            for r in self.conn.execute(
                sa.select(SECRETS.c.table_name, SECRETS.c.row_id, SECRETS.c.column_name).where(
                    SECRETS.c.table_name == table.name, SECRETS.c.row_id == row_id
                )
            )
        }
        rows = [
            secret_values(self.keys, call_id, cell, changes[cell[2]][0], self.now)
            for cell in cells
            if cell not in have
        ]
        if rows:
            self.conn.execute(sa.insert(SECRETS), rows)
            self.sealed += len(rows)


def _batches(
    conn: Connection, select: sa.Select[Any], id_column: Any, batch: int
) -> Iterator[Sequence[Any]]:
    after = 0
    while True:
        rows = conn.execute(select.where(id_column > after).order_by(id_column).limit(batch)).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _changes(
    row: Any, columns: tuple[str, ...], masker: Callable[[str], str] = mask_text
) -> dict[str, tuple[Any, Any]]:
    out = {}
    for c in columns:
        value = getattr(row, c)
        masked = mask_value(value, masker)
        if masked != value:
            out[c] = (value, masked)
    return out


def _turns(w: _Writer, batch: int) -> None:
    """Turn text and decisions; the entities of a changed turn get offsets into the
    masked text (their originals sealed like any value)."""
    for rows in _batches(w.conn, sa.select(TURN), TURN.c.id, batch):
        for t in rows:
            changes = _changes(t, ("decision",))
            text = mask_tracked(t.text or "")
            if text.changed:
                changes["text"] = (t.text, text.text)
                for e in w.conn.execute(
                    sa.select(ENTITY).where(
                        ENTITY.c.call_id == t.call_id, ENTITY.c.turn_idx == t.idx
                    )
                ):
                    moved = {
                        "start": (e.start, text.position(e.start)),
                        "end": (e.end, text.position(e.end, end=True)),
                    }
                    w.update(
                        ENTITY, e.id, t.call_id, {k: v for k, v in moved.items() if v[0] != v[1]}
                    )
            w.update(TURN, t.id, t.call_id, changes)


def _entities(w: _Writer, batch: int) -> None:
    for rows in _batches(w.conn, sa.select(ENTITY), ENTITY.c.id, batch):
        for e in rows:
            changes = _changes(e, ("value", "text"), partial(mask_entity, e.label))
            w.update(ENTITY, e.id, e.call_id, changes)


def _others(w: _Writer, batch: int) -> None:
    for rows in _batches(w.conn, sa.select(RISK), RISK.c.id, batch):
        for r in rows:
            w.update(RISK, r.id, r.call_id, _changes(r, ("band_reason", "explanation")))
    verdicts = sa.select(VERDICT, REVIEW_ITEM.c.call_id).join(
        REVIEW_ITEM, REVIEW_ITEM.c.id == VERDICT.c.review_item_id
    )
    for rows in _batches(w.conn, verdicts, VERDICT.c.id, batch):
        for v in rows:
            w.update(VERDICT, v.id, v.call_id, _changes(v, ("reason", "turn_corrections")))
    calls = sa.select(CALL).where(CALL.c.error.is_not(None))
    for rows in _batches(w.conn, calls, CALL.c.id, batch):
        for c in rows:
            w.update(CALL, c.id, c.id, _changes(c, ("error",)))


def mask_stored(conn: Connection, keys: KeyRing | None, batch: int = 500) -> dict[str, int]:
    """Mask every stored callee and reviewer text on ``conn`` (the caller commits);
    returns how many rows changed per table, and ``sealed``: originals kept. Empty when
    nothing needed masking."""
    w = _Writer(conn, keys)
    _turns(w, batch)
    _entities(w, batch)
    _others(w, batch)
    if not w.masked:
        return {}
    return {**{t: len(ids) for t, ids in w.masked.items()}, "sealed": w.sealed}
