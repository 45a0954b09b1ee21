"""What every paged, filtered list of the dashboard shares (the call list, the audit log,
the review queue): page arithmetic, the page's links, and the audited CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from typing import Any, TypedDict
from urllib.parse import urlencode

from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlmodel import Session

from bot.web.audit import audit
from bot.web.deps import Viewer

#: A cell starting with one of these is a formula to a spreadsheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def offset(page: int, size: int) -> int:
    """Rows before ``page`` (1-based) of ``size`` rows."""
    return (page - 1) * size


def page_count(total: int, size: int) -> int:
    """Pages for ``total`` rows; at least one, so an empty list still has page 1."""
    return max(1, -(-total // size))


class PageLinks(TypedDict):
    prev: str | None
    next: str | None
    csv: str


def page_links(params: dict[str, str], page: int, pages: int, csv_path: str) -> PageLinks:
    """The previous and next page (None at either end) and the export, all keeping the
    filters in ``params``."""

    def link(n: int) -> str:
        return "?" + urlencode({**params, "page": n})

    return PageLinks(
        prev=link(page - 1) if page > 1 else None,
        next=link(page + 1) if page < pages else None,
        csv=f"{csv_path}?" + urlencode(params),
    )


class PageOut(BaseModel):
    """Where an API page of a list stands; each list's model adds its ``items``."""

    total: int
    page: int
    page_size: int
    pages: int


def csv_cell(value: Any) -> Any:
    """Spreadsheet formula injection guard: text starting with = + - @ is quoted."""
    if isinstance(value, str) and value[:1] in FORMULA_START:
        return "'" + value
    return value


def csv_lines(
    columns: Iterable[str], rows: Iterable[Iterable[Any]], bom: bool = False
) -> Iterator[str]:
    """The header, then one line per row as it comes (``rows`` may be a lazy query)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield ("\ufeff" if bom else "") + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(csv_cell(v) for v in row)
        yield buffer.getvalue()


def audited_csv(
    session: Session,
    who: Viewer,
    action: str,
    object_type: str,
    lines: Iterator[str],
    *,
    filename: str,
    **detail: Any,
) -> StreamingResponse:
    """Record the export (``action``, with ``detail``) and commit it before the first byte
    leaves, then stream ``lines`` as ``<filename>-<UTC time>.csv``. ``lines`` should read
    through a database session of its own, not the request's, which is not meant to
    outlive the route."""
    audit(session, who.username, action, object_type, "", **detail)
    session.commit()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}-{stamp}.csv"'},
    )
