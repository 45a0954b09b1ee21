"""Masking what was stored before numbers were masked on the way in (migration 0007,
``bot db mask-pii``): turns, entities, score explanations, verdicts and call errors.

Each changed value's original is sealed into ``pii_secret`` when ``keys`` are given (the
key configured when the migration runs), else it is dropped. Idempotent: masked text
masks to itself, so a second run changes nothing; it also catches rows written by a
worker of an older version during a rolling upgrade. Rows are read in keyset batches
of ``batch``, so memory stays flat on a large database.

Each batch costs a fixed handful of statements, whatever its size: the read, one read
of the entities of the turns that changed, one read of the cells already sealed, one
``executemany`` UPDATE per set of changed columns and one ``executemany`` INSERT of the
sealed originals (a statement per changed row made a million calls take hours).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from bot.core.masking import MaskedText, mask_entity, mask_text, mask_tracked
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


Changes = dict[str, tuple[Any, Any]]
"""Column -> (original, masked) for one row."""


class _Writer:
    """The changes of one keyset batch, written together by :meth:`flush`; counts for
    the run."""

    def __init__(self, conn: Connection, keys: KeyRing | None) -> None:
        self.conn, self.keys = conn, keys
        self.now = dt.datetime.now(dt.UTC)
        #: Rows changed, by table, counted per batch: nothing is kept between batches.
        #: Each row changes in one batch only: an entity of a changed turn is moved and
        #: masked with its turn (the recorder numbers a call's turns 0, 1, ..., so one
        #: turn holds it), and the entities pass then finds it masked.
        self.masked: Counter[str] = Counter()
        self.sealed = 0
        self._tables: dict[str, sa.TableClause] = {}
        self._pending: dict[tuple[str, int], tuple[int, Changes]] = {}

    def update(self, table: sa.TableClause, row_id: int, call_id: int, changes: Changes) -> None:
        """Queue ``changes`` for one row. A row changed twice in a batch keeps its first
        original and its last masked value, as two statements in a row would."""
        if not changes:
            return
        self._tables[table.name] = table
        _, queued = self._pending.setdefault((table.name, row_id), (call_id, {}))
        for column, (original, masked) in changes.items():
            queued[column] = (queued.get(column, (original,))[0], masked)

    def current(self, table: sa.TableClause, row_id: int, column: str, stored: Any) -> Any:
        """A column's value as the queued changes leave it (``stored`` if none)."""
        queued = self._pending.get((table.name, row_id))
        change = queued[1].get(column) if queued else None
        return stored if change is None else change[1]

    def flush(self) -> None:
        """Write the queued changes and seal their originals."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
        for (table, row_id), (_, changes) in pending.items():
            params = {"row_id": row_id, **{f"new_{c}": m for c, (_, m) in changes.items()}}
            groups.setdefault((table, tuple(sorted(changes))), []).append(params)
        for (table, columns), params_list in groups.items():
            self.conn.execute(_update(self._tables[table], columns), params_list)
        self.masked.update(table for table, _ in pending)
        if self.keys is not None:
            self._seal(self.keys, pending)

    def _seal(self, keys: KeyRing, pending: dict[tuple[str, int], tuple[int, Changes]]) -> None:
        have = _sealed_cells(self.conn, pending)
        rows = [
            secret_values(keys, call_id, (table, row_id, column), original, self.now)
            for (table, row_id), (call_id, changes) in pending.items()
            for column, (original, _) in changes.items()
            if (table, row_id, column) not in have
        ]
        if rows:
            self.conn.execute(sa.insert(SECRETS), rows)
            self.sealed += len(rows)


def _update(table: sa.TableClause, columns: tuple[str, ...]) -> sa.Update:
    """One row's ``columns`` set, for ``executemany`` (``row_id``, ``new_<column>``)."""
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id", type_=sa.Integer))
        .values({c: sa.bindparam(f"new_{c}", type_=table.c[c].type) for c in columns})
    )


def _sealed_cells(conn: Connection, rows: Iterable[tuple[str, int]]) -> set[Cell]:
    """The cells of ``rows`` (table, id) that already hold a sealed original, in one
    read (a worker of this version sealed them, or an earlier batch of this run)."""
    ids: dict[str, list[int]] = {}
    for table, row_id in rows:
        ids.setdefault(table, []).append(row_id)
    where = [(SECRETS.c.table_name == t) & SECRETS.c.row_id.in_(i) for t, i in ids.items()]
    select = sa.select(SECRETS.c.table_name, SECRETS.c.row_id, SECRETS.c.column_name)
    return {
        (r.table_name, r.row_id, r.column_name) for r in conn.execute(select.where(sa.or_(*where)))
    }


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
) -> Changes:
    out = {}
    for c in columns:
        value = getattr(row, c)
        masked = mask_value(value, masker)
        if masked != value:
            out[c] = (value, masked)
    return out


def _entity_changes(e: Any) -> Changes:
    return _changes(e, ("value", "text"), partial(mask_entity, e.label))


def _turns(w: _Writer, batch: int) -> None:
    """Turn text and decisions; the entities of a changed turn get offsets into the
    masked text (their originals sealed like any value), and are masked with it."""
    for rows in _batches(w.conn, sa.select(TURN), TURN.c.id, batch):
        changed: list[tuple[Any, MaskedText]] = []
        for t in rows:
            changes = _changes(t, ("decision",))
            text = mask_tracked(t.text or "")
            if text.changed:
                changes["text"] = (t.text, text.text)
                changed.append((t, text))
            w.update(TURN, t.id, t.call_id, changes)
        entities = _entities_of(w.conn, [(t.call_id, t.idx) for t, _ in changed])
        for t, text in changed:
            for e in entities.get((t.call_id, t.idx), ()):
                moved = {}
                for column in ("start", "end"):
                    at = w.current(ENTITY, e.id, column, getattr(e, column))
                    to = text.position(at, end=column == "end")
                    if to != at:
                        moved[column] = (at, to)
                w.update(ENTITY, e.id, t.call_id, {**moved, **_entity_changes(e)})
        w.flush()


def _entities_of(
    conn: Connection, turns: list[tuple[int, int]]
) -> dict[tuple[int, int], list[Any]]:
    """The entities of ``turns`` (call id, turn index), by turn, in one read."""
    if not turns:
        return {}
    out: dict[tuple[int, int], list[Any]] = {}
    key = sa.tuple_(ENTITY.c.call_id, ENTITY.c.turn_idx)
    for e in conn.execute(sa.select(ENTITY).where(key.in_(set(turns))).order_by(ENTITY.c.id)):
        out.setdefault((e.call_id, e.turn_idx), []).append(e)
    return out


def _each(
    w: _Writer, select: sa.Select[Any], id_column: Any, batch: int,
    change: Callable[[Any], tuple[sa.TableClause, int, Changes]],
) -> None:  # fmt: skip
    """Every row of ``select`` in keyset batches: ``change(row)`` is (table, call id,
    changes) for the row's ``id``; each batch written at once."""
    for rows in _batches(w.conn, select, id_column, batch):
        for row in rows:
            table, call_id, changes = change(row)
            w.update(table, row.id, call_id, changes)
        w.flush()


def _entities(w: _Writer, batch: int) -> None:
    _each(
        w, sa.select(ENTITY), ENTITY.c.id, batch, lambda e: (ENTITY, e.call_id, _entity_changes(e))
    )


def _others(w: _Writer, batch: int) -> None:
    _each(
        w, sa.select(RISK), RISK.c.id, batch,
        lambda r: (RISK, r.call_id, _changes(r, ("band_reason", "explanation"))),
    )  # fmt: skip
    verdicts = sa.select(VERDICT, REVIEW_ITEM.c.call_id).join(
        REVIEW_ITEM, REVIEW_ITEM.c.id == VERDICT.c.review_item_id
    )
    _each(
        w, verdicts, VERDICT.c.id, batch,
        lambda v: (VERDICT, v.call_id, _changes(v, ("reason", "turn_corrections"))),
    )  # fmt: skip
    calls = sa.select(CALL).where(CALL.c.error.is_not(None))
    _each(w, calls, CALL.c.id, batch, lambda c: (CALL, c.id, _changes(c, ("error",))))


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
    return {**w.masked, "sealed": w.sealed}
