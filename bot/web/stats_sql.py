"""SQLAlchemy Core building blocks of :mod:`bot.web.stats`: the tables under their short
aliases, the sums every rate needs, and the places where SQLite and PostgreSQL differ.

The engines differ in four places, each behind one function here: unnesting JSON arrays
(``jsonb_array_elements`` / ``json_each``) and reading their fields (``->>`` /
``json_extract``), truncating timestamps to the hour (``to_char`` / ``strftime``) and to
the week (``date_trunc`` / ``date(…, 'weekday 0', '-6 days')``). Percentiles differ too,
but as whole queries (:func:`bot.web.stats.latency_percentiles`).

Timestamps are compared as bound parameters of the column's type (``UTCDateTime``):
SQLAlchemy turns them into UTC, and on SQLite into the same ``YYYY-MM-DD HH:MM:SS.ffffff``
text the rows are stored as, so comparisons match on both engines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.selectable import CTE, NamedFromClause
from sqlmodel import Session

from bot.core.vocab import NOT_CONNECTED
from bot.store.models import (
    CallRow,
    CampaignAccountRow,
    CampaignRow,
    ReviewItemRow,
    RiskAssessmentRow,
    TurnRow,
    VerdictRow,
)

CAMPAIGN: sa.Table = CampaignRow.__table__  # type: ignore[attr-defined]
QUEUE: sa.Table = CampaignAccountRow.__table__  # type: ignore[attr-defined]
VERDICT: sa.Table = VerdictRow.__table__  # type: ignore[attr-defined]

#: The aliases the queries read as: calls ``c``, work items ``ca``, turns ``t``...
C: sa.Alias = CallRow.__table__.alias("c")  # type: ignore[attr-defined]
CA: sa.Alias = CampaignAccountRow.__table__.alias("ca")  # type: ignore[attr-defined]
V: sa.Alias = VerdictRow.__table__.alias("v")  # type: ignore[attr-defined]
RI: sa.Alias = ReviewItemRow.__table__.alias("ri")  # type: ignore[attr-defined]
RA: sa.Alias = RiskAssessmentRow.__table__.alias("ra")  # type: ignore[attr-defined]
T: sa.Alias = TurnRow.__table__.alias("t")  # type: ignore[attr-defined]

#: Outcomes of calls nobody answered, as stored.
NOT_CONNECTED_VALUES = sorted(o.value for o in NOT_CONNECTED)


def is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def count_if(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    """``sum(CASE WHEN cond THEN 1 ELSE 0 END)``: NULL over no rows, as SQL's ``sum``."""
    return sa.func.sum(sa.case((cond, 1), else_=0))


def rate_sums(outcome: sa.ColumnElement[Any]) -> list[sa.Label[Any]]:
    """``failed``, ``refused`` and ``connected`` counts of the rows' ``outcome`` (0, not
    NULL, over no rows)."""
    return [
        sa.func.coalesce(count_if(outcome == "failed"), 0).label("failed"),
        sa.func.coalesce(count_if(outcome == "refused"), 0).label("refused"),
        sa.func.coalesce(count_if(outcome.not_in(NOT_CONNECTED_VALUES)), 0).label("connected"),
    ]


def hour_bucket(session: Session, ts: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The UTC hour of ``ts`` as ``YYYY-MM-DD HH`` text."""
    if is_pg(session):
        return sa.func.to_char(sa.func.timezone("UTC", ts), "YYYY-MM-DD HH24")
    return sa.func.strftime("%Y-%m-%d %H", ts)


def week_start(session: Session, ts: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The Monday (UTC) of the week of ``ts`` as ``YYYY-MM-DD`` text."""
    if is_pg(session):
        return sa.func.to_char(
            sa.func.date_trunc("week", sa.func.timezone("UTC", ts)), "YYYY-MM-DD"
        )
    return sa.func.date(ts, "weekday 0", "-6 days")


def json_elements(session: Session, array: sa.ColumnElement[Any], name: str) -> NamedFromClause:
    """The elements of a JSON array column as a table ``name`` with one column ``value``,
    joined implicitly to the row it belongs to (a lateral function in ``FROM``)."""
    if is_pg(session):
        fn = sa.func.jsonb_array_elements(array).table_valued(
            sa.column("value", JSONB), joins_implicitly=True
        )
    else:
        fn = sa.func.json_each(array).table_valued("value", joins_implicitly=True)
    return fn.alias(name)


def json_text(session: Session, elements: NamedFromClause, key: str) -> sa.ColumnElement[Any]:
    """Field ``key`` of each element, as text (numbers as numbers on SQLite)."""
    if is_pg(session):
        text: sa.ColumnElement[Any] = elements.c.value[key].astext
        return text
    return sa.func.json_extract(elements.c.value, f"$.{key}")


def json_value(session: Session, elements: NamedFromClause, key: str) -> sa.ColumnElement[Any]:
    """Field ``key`` of each element as JSON (a list on PostgreSQL, JSON text on SQLite)."""
    if is_pg(session):
        return elements.c.value[key]
    return sa.func.json_extract(elements.c.value, f"$.{key}")


@dataclass(frozen=True)
class Reviewed:
    """CTEs ``reviewed`` (the latest verdict per review item since a time, with its call
    and the call's script) and ``corr`` (that verdict's per-turn corrections, one row
    each), under their aliases ``r`` and ``co``."""

    r: NamedFromClause
    co: NamedFromClause
    corr: CTE


def reviewed(session: Session, since: dt.datetime, *, materialized: bool = False) -> Reviewed:
    """``materialized``: compute ``reviewed`` once on PostgreSQL even where it is read
    only once (the fired-rules query: inlined, the planner picks a parallel plan whose
    JIT compilation costs more than it saves, ~30% slower at 100,000 calls)."""
    latest = (
        sa.select(sa.func.max(VERDICT.c.id).label("id"))
        .where(VERDICT.c.created_at >= since)
        .group_by(VERDICT.c.review_item_id)
        .cte("latest")
    )
    cte = (
        sa.select(
            V.c.id.label("verdict_id"),
            V.c.agree,
            V.c.created_at,
            RI.c.call_id,
            C.c.script_id,
            C.c.script_version,
        )
        .select_from(
            latest.join(V, V.c.id == latest.c.id)
            .join(RI, RI.c.id == V.c.review_item_id)
            .join(C, C.c.id == RI.c.call_id)
        )
        .cte("reviewed")
    )
    if materialized and is_pg(session):
        cte = cte.prefix_with("MATERIALIZED")
    r = cte.alias("r")
    e = json_elements(session, V.c.turn_corrections, "e")
    corr = (
        sa.select(
            r.c.call_id,
            r.c.verdict_id,
            sa.cast(json_text(session, e, "turn_idx"), sa.Integer).label("turn_idx"),
            json_text(session, e, "text").label("text"),
            json_text(session, e, "intent").label("intent"),
            json_value(session, e, "reading").label("reading"),
        )
        .select_from(r.join(V, V.c.id == r.c.verdict_id))
        .cte("corr")
    )
    return Reviewed(r=r, co=corr.alias("co"), corr=corr)
