"""The audit log, read-only: filters (actor, action, dates), pagination newest first,
CSV export (itself audited). There is deliberately no route that changes or deletes an
event: the log is append-only (:mod:`bot.web.audit` only inserts).

The page shows each event readably (:mod:`bot.web.audit_view`: actor by kind and name,
action and detail keys translated, the client's address); the API and the CSV keep the
stored values and English keys. Date filters are days in ``web.timezone``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlmodel import Session, col, select

from bot.store.models import AuditEventRow
from bot.web.audit_view import event_view
from bot.web.deps import DB, Viewer, engine_of, require, web_settings
from bot.web.listing import PageOut, audited_csv, csv_lines, offset, page_count, page_links
from bot.web.pages import page_gettext, render
from bot.web.params import PageNo
from bot.web.roles import Permission

router = APIRouter()
#: Route guards (module singletons: a call in an argument default is evaluated once anyway).
MAY_VIEW_AUDIT = require(Permission.VIEW_AUDIT)
CSV_COLUMNS = ("id", "at", "actor", "action", "object_type", "object_id", "detail")


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    action: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    #: The zone whose days the dates are (``web.timezone``).
    zone: dt.tzinfo = dt.UTC

    def where(self) -> list[sa.ColumnElement[bool]]:
        conds: list[sa.ColumnElement[bool]] = []
        if self.actor:
            conds.append(col(AuditEventRow.actor) == self.actor)
        if self.action:
            conds.append(col(AuditEventRow.action) == self.action)
        if self.date_from:
            conds.append(col(AuditEventRow.at) >= _day(self.date_from, self.zone))
        if self.date_to:
            conds.append(
                col(AuditEventRow.at) < _day(self.date_to + dt.timedelta(days=1), self.zone)
            )
        return conds

    def as_params(self) -> dict[str, str]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "zone"}
        return {k: str(v) for k, v in values.items() if v is not None}


def _day(day: dt.date, zone: dt.tzinfo = dt.UTC) -> dt.datetime:
    """Midnight starting ``day`` in ``zone``, in UTC (how the database keeps times)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def _date(value: str | None, name: str) -> dt.date | None:
    if not value or not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(400, f"{name}: a date YYYY-MM-DD") from None
    if day >= dt.date.max:  # the day after it, where a range ends, does not exist
        raise HTTPException(400, f"{name}: a date before {dt.date.max}")
    return day


def audit_filters(
    request: Request,
    actor: str | None = Query(None),
    action: str | None = Query(None),
    date_from: str | None = Query(None, description="first day (in web.timezone), YYYY-MM-DD"),
    date_to: str | None = Query(None, description="last day (in web.timezone), YYYY-MM-DD"),
) -> AuditFilters:
    return AuditFilters(
        actor=(actor or "").strip() or None,
        action=(action or "").strip() or None,
        date_from=_date(date_from, "date_from"),
        date_to=_date(date_to, "date_to"),
        zone=web_settings(request).zone,
    )


_NEWEST = (col(AuditEventRow.at).desc(), col(AuditEventRow.id).desc())


def page_of(
    session: Session, f: AuditFilters, page: int, size: int
) -> tuple[list[AuditEventRow], int]:
    rows = list(
        session.exec(
            select(AuditEventRow)
            .where(*f.where())
            .order_by(*_NEWEST)
            .limit(size)
            .offset(offset(page, size))
        )
    )
    total = session.execute(
        sa.select(sa.func.count()).select_from(AuditEventRow).where(*f.where())
    ).scalar_one()
    return rows, int(total)


def _actions(session: Session) -> list[str]:
    return list(
        session.execute(
            sa.select(col(AuditEventRow.action))
            .distinct()
            .order_by(col(AuditEventRow.action))
            .limit(200)
        ).scalars()
    )


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(
    request: Request,
    page: PageNo = 1,
    filters: AuditFilters = Depends(audit_filters),
    who: Viewer = Depends(MAY_VIEW_AUDIT),
    session: Session = DB,
) -> HTMLResponse:
    size = web_settings(request).page_size
    rows, total = page_of(session, filters, page, size)
    pages = page_count(total, size)
    params = filters.as_params()
    speak = page_gettext(request)
    return render(
        request, "audit.html", who, rows=[event_view(e, speak) for e in rows], total=total,
        page=page, pages=pages,
        filters=params, actions=_actions(session), **page_links(params, page, pages, "/audit.csv"),
    )  # fmt: skip


def _csv_rows(engine: Any, f: AuditFilters, batch: int = 1000) -> Iterator[tuple[Any, ...]]:
    """Every matching event (``CSV_COLUMNS``), newest first, in keyset batches read in a
    session of its own."""
    before: int | None = None
    with Session(engine) as session:
        while True:
            stmt = select(AuditEventRow).where(*f.where())
            if before is not None:
                stmt = stmt.where(col(AuditEventRow.id) < before)
            rows = list(session.exec(stmt.order_by(col(AuditEventRow.id).desc()).limit(batch)))
            for e in rows:
                yield (
                    e.id, e.at.isoformat(), e.actor, e.action, e.object_type, e.object_id,
                    json.dumps(e.detail, ensure_ascii=False, sort_keys=True),
                )  # fmt: skip
            if len(rows) < batch:
                return
            before = rows[-1].id


@router.get("/audit.csv", include_in_schema=False)
def audit_csv(
    request: Request,
    filters: AuditFilters = Depends(audit_filters),
    who: Viewer = Depends(MAY_VIEW_AUDIT),
    session: Session = DB,
) -> Response:
    """The filtered log as CSV; the export is itself an event (committed first, so it is
    in the file too). Rows are in insertion order, newest first."""
    lines = csv_lines(CSV_COLUMNS, _csv_rows(engine_of(request), filters))
    return audited_csv(
        session,
        who,
        "audit_exported",
        "audit",
        lines,
        filename="audit",
        filters=filters.as_params(),
    )


class AuditEventOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]


class AuditPageOut(PageOut):
    items: list[AuditEventOut]


@router.get("/api/v1/audit", response_model=AuditPageOut, tags=["audit"])
def api_audit(
    request: Request,
    page: PageNo = 1,
    filters: AuditFilters = Depends(audit_filters),
    who: Viewer = Depends(MAY_VIEW_AUDIT),
    session: Session = DB,
) -> AuditPageOut:
    """Audit events, newest first, filtered and paginated. Read-only: the log has no
    update or delete."""
    size = web_settings(request).page_size
    rows, total = page_of(session, filters, page, size)
    return AuditPageOut(
        total=total,
        page=page,
        page_size=size,
        pages=page_count(total, size),
        items=[
            AuditEventOut(
                id=e.id or 0,
                at=e.at,
                actor=e.actor,
                action=e.action,
                object_type=e.object_type,
                object_id=e.object_id,
                detail=e.detail,
            )
            for e in rows
        ],
    )
