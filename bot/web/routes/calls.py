"""The call list (filters, pagination, masked CSV export), the call detail (recording,
transcript with highlighted entities, the score's explanation, disposition, the
account's panorama) and revealing personal data with a reason; pages and JSON API.

Personal numbers are masked everywhere here unless a ``reveal_pii`` viewer gives a
reason, and then only in that one response. Every view of a call is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from bot.core.masking import mask_phone
from bot.core.vocab import SENSITIVE_LABELS, Disposition, Outcome
from bot.web import present
from bot.web.audit import audit
from bot.web.calls_query import (
    BAND_FILTERS,
    REVIEW_STATES,
    CallDetail,
    CallFilters,
    CallSummary,
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


# -- presentation shared with the review pages ------------------------------------------


def summary_dict(row: CallSummary, reveal: bool = False) -> dict[str, Any]:
    """A list row as shown: numbers masked."""
    return {
        "id": row.id,
        "started_at": row.started_at,
        "duration_s": row.duration_s,
        "outcome": row.outcome,
        "risk_band": row.risk_band,
        "risk_score": row.risk_score,
        "disposition": row.disposition,
        "attempt_no": row.attempt_no,
        "account_id": present.account_id(row.account_id, reveal),
        "name": row.name,
        "phone": row.phone_e164 if reveal else mask_phone(row.phone_e164),
        "branch": row.branch,
        "campaign_id": row.campaign_id,
        "campaign": row.campaign,
        "review_state": row.review_state,
        "review_reason": row.review_reason,
    }


def body_context(detail: CallDetail, reveal: bool = False) -> dict[str, Any]:
    """What ``_call_body.html`` needs: the call, masked unless ``reveal``."""
    a = detail.account
    turns = [
        {
            "row": t,
            "html": present.highlight(
                present.spans(t.text, detail.entities.get(t.idx, []), reveal)
            ),
            "entities": [
                {
                    "label": e.label,
                    "value": present.entity_value(e, reveal),
                    "negated": e.negated,
                }
                for e in detail.entities.get(t.idx, [])
            ],
        }
        for t in detail.turns
    ]
    return {
        "call": detail.call,
        "campaign": detail.campaign,
        "account": a,
        "acct": {
            "account_id": present.account_id(a.account_id, reveal),
            "phone": present.phone(a, reveal),
            "id_number": present.id_number(a, reveal),
        },
        "turns": turns,
        "assessment": detail.assessment,
        "band_reason": present.shown(
            detail.assessment.band_reason if detail.assessment else "", reveal
        ),
        "explanation": present.explanation_rows(
            detail.assessment.explanation if detail.assessment else [], reveal
        ),
        "dispositions": detail.dispositions,
        "review": detail.review,
        "verdicts": [
            {
                "agree": v.agree,
                "corrected_band": v.corrected_band,
                "corrected_disposition": v.corrected_disposition,
                "reason": present.shown(v.reason, reveal),
                "turn_corrections": v.turn_corrections,
            }
            for v in detail.verdicts
        ],
        "other_attempts": detail.other_attempts,
        "revealed": reveal,
        "error_text": present.shown(detail.call.error, reveal),
    }


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
        rows=[summary_dict(r) for r in result.rows],
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
            s = summary_dict(row)
            yield (
                s["id"], s["started_at"].isoformat(), s["campaign"] or "", s["account_id"],
                s["name"], s["phone"], s["branch"] or "", s["attempt_no"], s["outcome"] or "",
                s["risk_band"] or "", s["risk_score"] if s["risk_score"] is not None else "",
                s["disposition"] or "", s["review_state"] or "", s["duration_s"] or "",
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
    return render(request, "call_detail.html", who, **body_context(detail))


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
            request, "call_detail.html", who, 400, **body_context(detail), reveal_error=shown
        )
    page = render(request, "call_detail.html", who, **body_context(detail, reveal=True))
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


class CallSummaryOut(BaseModel):
    id: int
    started_at: dt.datetime
    duration_s: float | None
    outcome: str | None
    risk_band: str | None
    risk_score: float | None
    disposition: str | None
    attempt_no: int
    account_id: str = Field(description="masked")
    name: str
    phone: str = Field(description="masked")
    branch: str | None
    campaign_id: int | None
    campaign: str | None
    review_state: str | None = Field(description="open | claimed | done, null: not queued")
    review_reason: str | None


class CallPageOut(PageOut):
    items: list[CallSummaryOut]


class EntityOut(BaseModel):
    label: str
    text: str
    value: str
    start: int = Field(description="offset in the stored turn text")
    end: int
    negated: bool


class TurnOut(BaseModel):
    idx: int
    role: str
    at_s: float
    latency_ms: float | None
    node_id: str
    topic: str
    event: str
    text: str
    intent: str | None
    intent_confidence: float | None
    reading: list[str] = Field(
        description="what the answer meant: schema values, e.g. custody=lent"
    )
    entities: list[EntityOut]


class EvidenceOut(BaseModel):
    topic: str
    node_id: str
    answer: str
    match: str


class RuleOut(BaseModel):
    feature: str
    description: str
    category: str
    weight: float
    hits: int
    contribution: float
    evidence: list[EvidenceOut]


class ScoreOut(BaseModel):
    score: float
    band: str | None
    prior: float
    prior_contribution: float
    logit: float
    severe: bool
    ruleset_version: str
    band_reason: str
    rules: list[RuleOut]


class DispositionOut(BaseModel):
    disposition: str
    situation: str
    source: str
    needs_review: bool
    sampled: bool
    created_at: dt.datetime


class AttemptOut(BaseModel):
    id: int
    started_at: dt.datetime
    attempt_no: int
    outcome: str | None
    risk_band: str | None
    disposition: str | None


class AccountOut(BaseModel):
    account_id: str = Field(description="masked")
    name: str
    phone: str = Field(description="masked")
    id_number: str = Field(description="masked")
    card_last4: str | None
    scenario: str
    model_score: float
    branch: str | None
    txn_amount: float | None
    txn_date: dt.date | None
    txn_counterparty: str | None


class ReviewOut(BaseModel):
    id: int
    state: str
    reason: str


class CallDetailOut(BaseModel):
    id: int
    campaign: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: float | None
    outcome: str | None
    ended_by: str | None
    script: str | None
    nlu_model: str | None = Field(description="the reading model version that judged the call")
    risk_score: float | None
    risk_band: str | None
    disposition: str | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    has_recording: bool
    account: AccountOut
    turns: list[TurnOut]
    score: ScoreOut | None
    dispositions: list[DispositionOut]
    review: ReviewOut | None
    other_attempts: list[AttemptOut]


def detail_out(request: Request, detail: CallDetail, reveal: bool = False) -> CallDetailOut:
    c, a, ra = detail.call, detail.account, detail.assessment
    rules = [
        RuleOut(**{**r.__dict__, "evidence": [EvidenceOut(**e.__dict__) for e in r.evidence]})
        for r in present.explanation_rows(ra.explanation if ra else [], reveal)
    ]
    return CallDetailOut(
        id=c.id or 0,
        campaign=detail.campaign.name if detail.campaign else None,
        started_at=c.started_at, ended_at=c.ended_at, duration_s=c.duration_s,
        outcome=c.outcome, ended_by=c.ended_by,
        script=f"{c.script_id}@v{c.script_version}" if c.script_id else None,
        nlu_model=c.nlu_version,
        risk_score=c.risk_score, risk_band=c.risk_band, disposition=c.disposition,
        latency_p50_ms=c.latency_p50_ms, latency_p95_ms=c.latency_p95_ms,
        has_recording=_recording_file(request, c.recording_path) is not None,
        account=AccountOut(
            account_id=present.account_id(a.account_id, reveal), name=a.name,
            phone=present.phone(a, reveal), id_number=present.id_number(a, reveal),
            card_last4=a.card_last4, scenario=a.scenario, model_score=a.model_score,
            branch=a.branch, txn_amount=a.txn_amount, txn_date=a.txn_date,
            txn_counterparty=a.txn_counterparty,
        ),
        turns=[
            TurnOut(
                idx=t.idx, role=t.role, at_s=t.at_s, latency_ms=t.latency_ms,
                node_id=t.node_id, topic=t.topic, event=t.event,
                text=present.shown(t.text, reveal), intent=t.intent,
                intent_confidence=t.intent_confidence, reading=list(t.reading or []),
                entities=[_entity_out(e, reveal) for e in detail.entities.get(t.idx, [])],
            )
            for t in detail.turns
        ],
        score=ScoreOut(
            score=ra.score, band=ra.band, prior=ra.prior,
            prior_contribution=ra.prior_contribution, logit=ra.logit, severe=ra.severe,
            ruleset_version=ra.ruleset_version,
            band_reason=present.shown(ra.band_reason, reveal), rules=rules,
        ) if ra else None,
        dispositions=[
            DispositionOut(
                disposition=d.disposition, situation=d.situation, source=d.source,
                needs_review=d.needs_review, sampled=d.sampled, created_at=d.created_at,
            )
            for d in detail.dispositions
        ],
        review=ReviewOut(id=detail.review.id or 0, state=detail.review.state,
                         reason=detail.review.reason) if detail.review else None,
        other_attempts=[
            AttemptOut(
                id=o.id or 0, started_at=o.started_at, attempt_no=o.attempt_no,
                outcome=o.outcome, risk_band=o.risk_band, disposition=o.disposition,
            )
            for o in detail.other_attempts
        ],
    )  # fmt: skip


def _entity_out(e: Any, reveal: bool) -> EntityOut:
    text = e.text
    if not reveal:
        sensitive = e.label in SENSITIVE_LABELS
        text = present.mask_sensitive(e.label, text) if sensitive else present.shown(text)
    return EntityOut(
        label=e.label, text=text, value=present.entity_value(e, reveal),
        start=e.start, end=e.end, negated=e.negated,
    )  # fmt: skip


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
        items=[CallSummaryOut(**summary_dict(r)) for r in result.rows],
    )


@router.get(
    "/api/v1/calls/{call_id}",
    response_model=CallDetailOut,
    tags=["calls"],
    responses=refusals(404),
)
def api_call(
    request: Request,
    call_id: DbId,
    who: Viewer = Depends(MAY_VIEW_CALLS),
    session: Session = DB,
) -> CallDetailOut:
    """One call with its transcript, score explanation, dispositions and panorama
    (masked); audited as a view."""
    return detail_out(request, view_call(session, who, call_id, via="api"))


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
    turns: list[TurnOut] = Field(description="the transcript, unmasked")
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
    full = detail_out(request, detail, reveal=True)
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
