"""The call list (filters, pagination, masked CSV export), the call detail (recording,
transcript with highlighted entities, the score's explanation, disposition, the
account's panorama) and revealing personal data with a reason; pages and JSON API.

Personal numbers are masked everywhere here unless a ``reveal_pii`` viewer gives a
reason, and then only in that one response. Every view of a call is audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from bot.core.vocab import SENSITIVE_LABELS, Disposition, Outcome
from bot.web.audit import audit
from bot.web.call_view import CallSummaryView, CallView, TurnView, call_view, summary_view
from bot.web.calls_query import (
    BAND_FILTERS,
    REVIEW_STATES,
    CallDetail,
    CallFilters,
    FilterError,
    count_calls,
    distinct_values,
    iter_calls,
    list_calls,
)
from bot.web.calls_service import (
    MIN_REASON,
    ReasonTooShort,
    call_or_404,
    reveal_call,
    view_call,
)
from bot.web.deps import DB, Viewer, engine_of, require, web_settings
from bot.web.errors import refusals
from bot.web.listing import PageOut, audited_csv, csv_lines, page_links
from bot.web.pages import page_gettext, render
from bot.web.params import DbId, PageNo
from bot.web.roles import Permission

router = APIRouter()
#: Route guards (module singletons: a call in an argument default is evaluated once anyway).
MAY_VIEW_CALLS = require(Permission.VIEW_CALLS)
MAY_REVEAL_PII = require(Permission.REVEAL_PII)
#: The detail's routes record the client's address on their audit events.
CSV_COLUMNS = (
    "call_id", "started_at", "campaign", "account_id", "name", "phone", "branch", "attempt",
    "outcome", "risk_band", "risk_score", "disposition", "review_state", "duration_s",
)  # fmt: skip


def call_filters(
    campaign: str | None = Query(None, description="campaign id"),
    outcome: str | None = Query(None, description="call outcome"),
    band: str | None = Query(None, description="risk band, or `none`"),
    disposition: str | None = Query(None),
    review: str | None = Query(None, description="none | open | claimed | done"),
    date_from: str | None = Query(None, description="first day (UTC), YYYY-MM-DD"),
    date_to: str | None = Query(None, description="last day (UTC), YYYY-MM-DD"),
    branch: str | None = Query(None),
    q: str | None = Query(
        None, description="account number, phone number (or its last digits), or name"
    ),
    sort: str | None = Query(None, description="newest (default) | oldest | score | length"),
) -> CallFilters:
    """The list's filters from the query string; blank values mean "any"."""
    try:
        return CallFilters.parse(
            campaign=campaign, outcome=outcome, band=band, disposition=disposition,
            review=review, date_from=date_from, date_to=date_to, branch=branch, q=q, sort=sort,
        )  # fmt: skip
    except FilterError as exc:
        raise HTTPException(400, str(exc)) from None


# -- pages ------------------------------------------------------------------------------


@router.get("/calls", response_class=HTMLResponse, include_in_schema=False)
def calls_page(
    request: Request,
    page: PageNo = 1,
    filters: CallFilters = Depends(call_filters),
    who: Viewer = Depends(MAY_VIEW_CALLS),
    session: Session = DB,
) -> HTMLResponse:
    result = list_calls(session, filters, page, web_settings(request).page_size)
    return render(
        request,
        "calls.html",
        who,
        rows=[summary_view(r) for r in result.rows],
        result=result,
        filters=filters.as_params(),
        links=page_links(filters.as_params(), result.page, result.pages, "/calls.csv"),
        choices={
            **distinct_values(session),
            "outcomes": [o.value for o in Outcome],
            "bands": BAND_FILTERS,
            "dispositions": [d.value for d in Disposition],
            "review_states": REVIEW_STATES,
        },
    )


def _csv_rows(engine: Any, filters: CallFilters) -> Iterator[tuple[Any, ...]]:
    """The export's rows (masked, ``CSV_COLUMNS``), read in batches in a session of its own."""
    with Session(engine) as session:
        for row in iter_calls(session, filters):
            s = summary_view(row)
            yield (
                s.id, s.started_at.isoformat(), s.campaign or "", s.account_id, s.name, s.phone,
                s.branch or "", s.attempt_no, s.outcome or "", s.risk_band or "",
                s.risk_score if s.risk_score is not None else "", s.disposition or "",
                s.review_state or "", s.duration_s or "",
            )  # fmt: skip


@router.get("/calls.csv", include_in_schema=False)
def calls_csv(
    request: Request,
    filters: CallFilters = Depends(call_filters),
    who: Viewer = Depends(MAY_VIEW_CALLS),
    session: Session = DB,
) -> Response:
    """Every matching call, masked, streamed in batches (the audit event counts them).
    With a BOM, so that spreadsheets read the Chinese right."""
    lines = csv_lines(CSV_COLUMNS, _csv_rows(engine_of(request), filters), bom=True)
    return audited_csv(
        session, who, "calls_exported", "call", lines, filename="calls",
        filters=filters.as_params(), rows=count_calls(session, filters),
    )  # fmt: skip


@router.get(
    "/calls/{call_id}",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def call_page(
    request: Request,
    call_id: DbId,
    who: Viewer = Depends(MAY_VIEW_CALLS),
    session: Session = DB,
) -> HTMLResponse:
    detail = view_call(session, who, call_id)
    return render(request, "call_detail.html", who, call=shown_call(request, detail))


@router.post(
    "/calls/{call_id}/reveal", response_class=HTMLResponse, include_in_schema=False,
)  # fmt: skip
def reveal_page(
    request: Request,
    call_id: DbId,
    reason: str = Form(""),
    who: Viewer = Depends(MAY_REVEAL_PII),
    session: Session = DB,
) -> HTMLResponse:
    """The detail unmasked, for this one response; the reason goes to the audit log. Too
    short a reason shows the call masked again (a plain view) with the message."""
    try:
        detail = reveal_call(session, who, call_id, reason)
    except ReasonTooShort:
        detail = view_call(session, who, call_id)
        gettext = page_gettext(request)
        shown = gettext("Give a reason of at least %(n)s characters.") % {"n": MIN_REASON}
        return render(
            request,
            "call_detail.html",
            who,
            400,
            call=shown_call(request, detail),
            reveal_error=shown,
        )
    page = render(request, "call_detail.html", who, call=shown_call(request, detail, reveal=True))
    page.headers["Cache-Control"] = "no-store"
    return page


def _recording_file(request: Request, stored: str | None) -> Path | None:
    """The call's WAV file, only if it exists under the recordings directory."""
    if not stored:
        return None
    settings = request.app.state.settings
    root = Path(settings.recordings_path).resolve()
    path = Path(stored)
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def shown_call(request: Request, detail: CallDetail, reveal: bool = False) -> CallView:
    """The call's view model (masked unless ``reveal``) for a page or the API."""
    has_recording = _recording_file(request, detail.call.recording_path) is not None
    return call_view(detail, has_recording=has_recording, reveal=reveal)


@router.get("/calls/{call_id}/recording", include_in_schema=False)
def recording(
    request: Request,
    call_id: DbId,
    who: Viewer = Depends(MAY_VIEW_CALLS),
    session: Session = DB,
) -> Response:
    """The recording (Range requests supported); a play is audited once, on the request
    for its first byte, not for every later chunk the player fetches."""
    detail = call_or_404(session, call_id)
    path = _recording_file(request, detail.call.recording_path)
    if path is None:
        raise HTTPException(404, "no recording for this call")
    range_header = request.headers.get("range", "")
    if not range_header or range_header.replace(" ", "").startswith("bytes=0-"):
        audit(session, who.username, "recording_played", "call", call_id)
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"})


# -- API --------------------------------------------------------------------------------


class CallPageOut(PageOut):
    items: list[CallSummaryView]


@router.get("/api/v1/calls", response_model=CallPageOut, tags=["calls"])
def api_calls(
    request: Request,
    page: PageNo = 1,
    filters: CallFilters = Depends(call_filters),
    who: Viewer = Depends(MAY_VIEW_CALLS),
    session: Session = DB,
) -> CallPageOut:
    """Calls, newest first, filtered and paginated (`web.page_size` per page); masked."""
    result = list_calls(session, filters, page, web_settings(request).page_size)
    return CallPageOut(
        total=result.total,
        page=result.page,
        page_size=result.page_size,
        pages=result.pages,
        items=[summary_view(r) for r in result.rows],
    )


@router.get(
    "/api/v1/calls/{call_id}",
    response_model=CallView,
    tags=["calls"],
    responses=refusals(404),
)
def api_call(
    request: Request,
    call_id: DbId,
    who: Viewer = Depends(MAY_VIEW_CALLS),
    session: Session = DB,
) -> CallView:
    """One call with its transcript, score explanation, dispositions and panorama
    (masked); audited as a view."""
    return shown_call(request, view_call(session, who, call_id, via="api"))


class RevealIn(BaseModel):
    reason: str = Field(min_length=MIN_REASON, description="why the numbers are needed")


class RevealedEntity(BaseModel):
    turn_idx: int
    label: str
    text: str
    value: str


class RevealOut(BaseModel):
    call_id: int
    account_id: str
    phone: str
    id_number: str | None
    card_last4: str | None
    turns: list[TurnView] = Field(description="the transcript, unmasked")
    entities: list[RevealedEntity] = Field(description="ID, card and phone entities")


@router.post(
    "/api/v1/calls/{call_id}/reveal", response_model=RevealOut, tags=["calls"],
    responses=refusals(404),
)  # fmt: skip
def api_reveal(
    request: Request,
    call_id: DbId,
    body: RevealIn,
    who: Viewer = Depends(MAY_REVEAL_PII),
    session: Session = DB,
) -> Response:
    """The call's personal numbers unmasked; the reason is audited (`pii_revealed`)."""
    detail = reveal_call(session, who, call_id, body.reason, via="api")
    full = shown_call(request, detail, reveal=True)
    a = detail.account
    out = RevealOut(
        call_id=call_id,
        account_id=a.account_id,
        phone=a.phone_e164 or a.phone,
        id_number=a.id_number,
        card_last4=a.card_last4,
        turns=full.turns,
        entities=[
            RevealedEntity(turn_idx=e.turn_idx, label=e.label, text=e.text, value=e.value)
            for es in detail.entities.values()
            for e in es
            if e.label in SENSITIVE_LABELS
        ],
    )
    return Response(
        out.model_dump_json(), media_type="application/json", headers={"Cache-Control": "no-store"}
    )
