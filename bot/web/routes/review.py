"""The review queue's pages and JSON API: every suspicious call plus the random sample. A
reviewer claims an item, reads the call and agrees or overturns it (corrected band and/or
disposition, a reason, optional per-turn corrections of transcript and intent).

The rules (atomic claims, who may give a verdict, corrections to the bank) are in
:mod:`bot.web.review_service`; a page and its API twin call the same function there and
differ only in parsing the request and rendering the answer (a redirect or the error
page; JSON or an HTTP error).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from bot.core.vocab import Disposition, Intent, RiskBand
from bot.web.call_view import VerdictView, verdict_view
from bot.web.calls_service import view_call
from bot.web.deps import DB, Viewer, clock, require, web_settings
from bot.web.errors import refusals
from bot.web.i18n import N_
from bot.web.listing import page_count
from bot.web.pages import render
from bot.web.params import DbId, PageNo
from bot.web.review_service import (
    DeskStats,
    QueueItemOut,
    QueueQuery,
    ReviewError,
    TurnCorrection,
    VerdictIn,
    campaign_choices,
    claim,
    claim_next,
    desk_stats,
    give_verdict,
    holds,
    is_claimable,
    item_or_404,
    my_items,
    open_items,
    player_turns,
    release,
)
from bot.web.roles import Permission
from bot.web.routes.calls import shown_call
from nlu.reading.schema import ALL_LABELS

router = APIRouter()
#: Route guards (module singletons: a call in an argument default is evaluated once anyway).
MAY_REVIEW = require(Permission.REVIEW)


# -- pages ------------------------------------------------------------------------------


def _verdict_from_form(form: Any) -> VerdictIn:
    """The page's form: decision, band, disposition, reason, turn_<idx>_text/_intent/
    _reading (reading values separated by spaces or commas)."""
    corrections: dict[int, dict[str, Any]] = {}
    for key, value in form.multi_items():
        parts = key.split("_")
        if len(parts) == 3 and parts[0] == "turn" and parts[1].isdigit() and value.strip():
            corrections.setdefault(int(parts[1]), {"turn_idx": int(parts[1])})[parts[2]] = value
    decision = form.get("decision")
    if decision not in ("agree", "overturn"):
        raise ReviewError(400, N_("choose agree or overturn"))
    try:
        return VerdictIn(
            agree=decision == "agree",
            corrected_band=form.get("band") or None,
            corrected_disposition=form.get("disposition") or None,
            reason=form.get("reason", ""),
            turn_corrections=[
                TurnCorrection(
                    **{k: v for k, v in c.items() if k in ("turn_idx", "text", "intent")},
                    reading=c["reading"].replace(",", " ").split() if "reading" in c else None,
                )
                for c in corrections.values()
            ],
        )
    except ValueError as exc:
        raise ReviewError(400, N_("invalid verdict: %(problem)s"), problem=str(exc)) from None


def _see(url: str) -> Response:
    """A form's answer: 303 to ``url``. A refused action raises :class:`ReviewError`,
    answered by the one handler of service refusals (:mod:`bot.web.errors`): the error
    page, in the page's language."""
    return RedirectResponse(url, status_code=303)


def _url(path: str, params: dict[str, str], **extra: object) -> str:
    """``path`` with the queue's filters (and ``extra``) as its query string."""
    values = {**params, **{k: str(v) for k, v in extra.items() if v is not None}}
    return f"{path}?{urlencode(values)}" if values else path


def _next_url(
    session: Session, who: Viewer, now: dt.datetime, query: QueueQuery, after: int | None,
    **extra: object,
) -> str:  # fmt: skip
    """Claim the reviewer's next item (same filters and order) and point at it; the queue
    when nothing is left."""
    params = query.as_params()
    found = claim_next(session, who, now, query, after=after)
    if found is None:
        return _url("/review", params, empty=1, **extra)
    return _url(f"/review/{found}", params, **extra)


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page(
    request: Request,
    query: Annotated[QueueQuery, Query()],
    page: PageNo = 1,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> HTMLResponse:
    web, now = web_settings(request), clock(request)
    size, sla = web.page_size, web.review_sla
    rows, total = open_items(session, now, page, size, query, sla=sla)
    return render(
        request, "review.html", who, open_rows=rows, total=total, page=page,
        pages=page_count(total, size), mine=my_items(session, who, now, sla=sla), query=query,
        params=query.as_params(), campaigns=campaign_choices(session),
        desk=desk_stats(session, who, now, sla=sla, zone=web.zone), qs=_url("", query.as_params()),
        done=request.query_params.get("done"), empty=request.query_params.get("empty"),
        review_sla_hours=sla.total_seconds() / 3600,
    )  # fmt: skip


@router.post("/review/next", include_in_schema=False)
def next_page(
    request: Request,
    query: Annotated[QueueQuery, Query()],
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> Response:
    """Start (or go on) reviewing: claim the first item in the queue's order."""
    return _see(_next_url(session, who, clock(request), query, None))


@router.get("/review/{item_id}", response_class=HTMLResponse, include_in_schema=False)
def review_item_page(
    request: Request,
    item_id: DbId,
    query: Annotated[QueueQuery, Query()],
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> HTMLResponse:
    item = item_or_404(session, item_id)
    detail = view_call(session, who, item.call_id, via="review")
    web, now = web_settings(request), clock(request)
    params = query.as_params()
    player = player_turns(detail.turns, detail.call.duration_s)
    return render(
        request, "review_item.html", who, call=shown_call(request, detail), item=item,
        mine=holds(item, who), claimable=is_claimable(item, now),
        qs=_url("", params), params=params,
        player=player, player_at={p.idx: p for p in player},
        desk=desk_stats(session, who, now, sla=web.review_sla, zone=web.zone),
        band_choices=[b.value for b in RiskBand], disposition_choices=[d.value for d in Disposition],
        intent_choices=[i.value for i in Intent], reading_choices=ALL_LABELS,
        error=request.query_params.get("error"), done=request.query_params.get("done"),
    )  # fmt: skip


@router.post("/review/{item_id}/claim", include_in_schema=False)
def claim_page(
    request: Request,
    item_id: DbId,
    query: Annotated[QueueQuery, Query()],
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> Response:
    claim(session, item_id, who, clock(request))
    return _see(_url(f"/review/{item_id}", query.as_params()))


@router.post("/review/{item_id}/release", include_in_schema=False)
def release_page(
    request: Request,
    item_id: DbId,
    query: Annotated[QueueQuery, Query()],
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> Response:
    release(session, item_id, who)
    return _see(_url("/review", query.as_params()))


@router.post("/review/{item_id}/skip", include_in_schema=False)
def skip_page(
    request: Request,
    item_id: DbId,
    query: Annotated[QueueQuery, Query()],
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> Response:
    """Skip to the next item: one you hold goes back to the queue for someone else, and
    the next one in the queue's order is claimed for you."""

    if holds(item_or_404(session, item_id), who):
        release(session, item_id, who)
    return _see(_next_url(session, who, clock(request), query, item_id))


@router.post("/review/{item_id}/verdict", include_in_schema=False)
async def verdict_page(
    request: Request,
    item_id: DbId,
    query: Annotated[QueueQuery, Query()],
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> Response:
    """Record the verdict, then (``then=next``, the default) open the next item in the
    queue's order already claimed, or (``then=queue``) go back to the queue."""
    form = await request.form()

    now = clock(request)
    give_verdict(session, item_id, _verdict_from_form(form), who, now)
    if form.get("then") == "queue":
        return _see(_url("/review", query.as_params(), done=item_id))
    return _see(_next_url(session, who, now, query, item_id, done=item_id))


# -- API --------------------------------------------------------------------------------


class QueueOut(BaseModel):
    total_open: int
    page: int
    page_size: int
    open: list[QueueItemOut] = Field(description="claimable, oldest first")
    mine: list[QueueItemOut] = Field(description="claimed by you")
    desk: DeskStats = Field(description="your verdicts today and the queue's age")


class ClaimOut(BaseModel):
    id: int
    state: str
    claimed_by: str | None
    claimed_at: dt.datetime | None


class VerdictOut(VerdictView):
    correction_queued: bool = Field(description="an overturned disposition goes to the bank")


@router.get("/api/v1/review", response_model=QueueOut, tags=["review"])
def api_queue(
    request: Request,
    query: Annotated[QueueQuery, Query()],
    page: PageNo = 1,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> QueueOut:
    """The review queue (claimable items matching the filters, high band first unless
    ``sort`` says otherwise) and the items you hold."""
    web, now = web_settings(request), clock(request)
    size, sla = web.page_size, web.review_sla
    rows, total = open_items(session, now, page, size, query, sla=sla)
    return QueueOut(
        total_open=total, page=page, page_size=size,
        open=rows, mine=my_items(session, who, now, sla=sla),
        desk=desk_stats(session, who, now, sla=sla, zone=web.zone),
    )  # fmt: skip


@router.post(
    "/api/v1/review/{item_id}/claim", response_model=ClaimOut, tags=["review"],
    responses=refusals(404, 409),
)  # fmt: skip
def api_claim(
    request: Request,
    item_id: DbId,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> ClaimOut:
    """Claim an item (409 if another reviewer holds it)."""
    item = claim(session, item_id, who, clock(request))
    return ClaimOut(
        id=item_id, state=item.state, claimed_by=who.username, claimed_at=item.claimed_at
    )


@router.post(
    "/api/v1/review/next", response_model=ClaimOut, tags=["review"], responses=refusals(404),
)  # fmt: skip
def api_next(
    request: Request,
    query: Annotated[QueueQuery, Query()],
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> ClaimOut:
    """Claim your next item: the first one in the queue's order (the filters and
    ``sort`` as for the queue) that you hold or may claim; 404 when none is left."""
    now = clock(request)
    found = claim_next(session, who, now, query)
    if found is None:
        raise ReviewError(404, N_("no item left in the queue"))
    item = item_or_404(session, found)
    return ClaimOut(id=found, state=item.state, claimed_by=who.username, claimed_at=item.claimed_at)


@router.post(
    "/api/v1/review/{item_id}/release", response_model=ClaimOut, tags=["review"],
    responses=refusals(404, 409),
)  # fmt: skip
def api_release(
    item_id: DbId,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> ClaimOut:
    """Give an item you hold back to the queue."""
    release(session, item_id, who)
    return ClaimOut(id=item_id, state="open", claimed_by=None, claimed_at=None)


@router.post(
    "/api/v1/review/{item_id}/verdict", response_model=VerdictOut, tags=["review"],
    responses=refusals(404, 409),
)  # fmt: skip
def api_verdict(
    request: Request,
    item_id: DbId,
    body: VerdictIn,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = DB,
) -> VerdictOut:
    """Agree, or overturn with a corrected band and/or disposition and a reason; an
    overturned disposition is queued to the bank as a correction."""
    v = give_verdict(session, item_id, body, who, clock(request))
    return VerdictOut(
        **verdict_view(v).model_dump(), correction_queued=v.corrected_disposition is not None
    )
