"""The review queue: every suspicious call plus the random sample. A reviewer claims an
item, reads the call and agrees or overturns it (corrected band and/or disposition, a
reason, optional per-turn corrections of transcript and intent); an overturned
disposition goes back to the bank as a correction (:mod:`bot.web.corrections`).

A claim is one conditional UPDATE (open, or claimed longer ago than ``CLAIM_TTL``, or
already the claimer's), so two reviewers never hold one item, even when they click at
the same instant: the database serialises the two updates and the second matches no row.
A verdict is likewise conditional on the item being claimed by its author.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col

from bot.core.masking import mask_phone
from bot.core.vocab import Disposition, Intent, RiskBand
from bot.store.models import AccountRow, CallRow, ReviewItemRow, TurnRow, UserRow, VerdictRow
from bot.web import present
from bot.web.audit import audit
from bot.web.calls_query import load_call
from bot.web.corrections import enqueue_correction
from bot.web.deps import Viewer, clock, db, require, web_settings
from bot.web.pages import render
from bot.web.roles import Permission
from bot.web.routes.calls import body_context

router = APIRouter()
#: Route guards (module singletons: a call in an argument default is evaluated once anyway).
MAY_REVIEW = require(Permission.REVIEW)
#: A claim older than this lapses: another reviewer may take the item.
CLAIM_TTL = dt.timedelta(minutes=30)
MAX_TEXT = 2000


class ReviewError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- queue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    id: int
    call_id: int
    reason: str
    state: str
    created_at: dt.datetime
    claimed_at: dt.datetime | None
    claimed_by: str | None
    started_at: dt.datetime
    outcome: str | None
    risk_band: str | None
    risk_score: float | None
    disposition: str | None
    name: str
    phone: str
    branch: str | None


def _claimable(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        col(ReviewItemRow.state) == "open",
        sa.and_(
            col(ReviewItemRow.state) == "claimed", col(ReviewItemRow.claimed_at) < now - CLAIM_TTL
        ),
    )


def _queue_select() -> Any:
    return (
        sa.select(
            col(ReviewItemRow.id),
            col(ReviewItemRow.call_id),
            col(ReviewItemRow.reason),
            col(ReviewItemRow.state),
            col(ReviewItemRow.created_at),
            col(ReviewItemRow.claimed_at),
            col(UserRow.username).label("claimed_by"),
            col(CallRow.started_at),
            col(CallRow.outcome),
            col(CallRow.risk_band),
            col(CallRow.risk_score),
            col(CallRow.disposition),
            col(AccountRow.name),
            col(AccountRow.phone_e164).label("phone"),
            col(AccountRow.branch),
        )
        .select_from(ReviewItemRow)
        .join(CallRow, col(CallRow.id) == ReviewItemRow.call_id)
        .join(AccountRow, col(AccountRow.id) == CallRow.account_pk)
        .outerjoin(UserRow, col(UserRow.id) == ReviewItemRow.claimed_by)
    )


def _rows(session: Session, stmt: Any) -> list[QueueRow]:
    return [
        QueueRow(**{**r._asdict(), "phone": mask_phone(r.phone)}) for r in session.execute(stmt)
    ]


_OLDEST = (col(ReviewItemRow.created_at), col(ReviewItemRow.id))


def open_items(
    session: Session, now: dt.datetime, page: int, page_size: int
) -> tuple[list[QueueRow], int]:
    """Claimable items (open, or a lapsed claim), oldest first, and how many there are."""
    stmt = _queue_select().where(_claimable(now)).order_by(*_OLDEST)
    rows = _rows(session, stmt.limit(page_size).offset((page - 1) * page_size))
    total = session.execute(
        sa.select(sa.func.count()).select_from(ReviewItemRow).where(_claimable(now))
    ).scalar_one()
    return rows, int(total)


def my_items(session: Session, who: Viewer) -> list[QueueRow]:
    stmt = (
        _queue_select()
        .where(col(ReviewItemRow.state) == "claimed", col(ReviewItemRow.claimed_by) == who.user_id)
        .order_by(*_OLDEST)
        .limit(100)
    )
    return _rows(session, stmt)


def next_open(session: Session, now: dt.datetime, after: int) -> int | None:
    """The oldest claimable item other than ``after`` (for the "next item" shortcut)."""
    found = session.execute(
        sa.select(col(ReviewItemRow.id))
        .where(_claimable(now), col(ReviewItemRow.id) != after)
        .order_by(*_OLDEST)
        .limit(1)
    ).scalar_one_or_none()
    return int(found) if found is not None else None


# -- claim, release, verdict ------------------------------------------------------------


def claim(session: Session, item_id: int, who: Viewer, now: dt.datetime) -> None:
    """Take the item atomically; :class:`ReviewError` (409) if someone else holds it."""
    if session.get(ReviewItemRow, item_id) is None:
        raise ReviewError(404, f"no review item {item_id}")
    result = session.execute(
        sa.update(ReviewItemRow)
        .where(
            col(ReviewItemRow.id) == item_id,
            sa.or_(
                _claimable(now),
                sa.and_(
                    col(ReviewItemRow.state) == "claimed",
                    col(ReviewItemRow.claimed_by) == who.user_id,
                ),
            ),
        )
        .values(state="claimed", claimed_by=who.user_id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ReviewError(409, "another reviewer holds this item, or it is done")
    session.expire_all()
    audit(session, who.username, "review_claimed", "review_item", item_id)


def release(session: Session, item_id: int, who: Viewer) -> None:
    result = session.execute(
        sa.update(ReviewItemRow)
        .where(
            col(ReviewItemRow.id) == item_id,
            col(ReviewItemRow.state) == "claimed",
            col(ReviewItemRow.claimed_by) == who.user_id,
        )
        .values(state="open", claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        if session.get(ReviewItemRow, item_id) is None:
            raise ReviewError(404, f"no review item {item_id}")
        raise ReviewError(409, "you do not hold this item")
    session.expire_all()
    audit(session, who.username, "review_released", "review_item", item_id)


class TurnCorrection(BaseModel):
    turn_idx: int = Field(ge=0)
    text: str | None = Field(None, max_length=MAX_TEXT, description="corrected transcript")
    intent: Intent | None = Field(None, description="corrected intent")


class VerdictIn(BaseModel):
    agree: bool
    corrected_band: RiskBand | None = None
    corrected_disposition: Disposition | None = None
    reason: str = Field("", max_length=MAX_TEXT, description="required when overturning")
    turn_corrections: list[TurnCorrection] = Field(default_factory=list, max_length=200)


def _clean_corrections(
    session: Session, call_id: int, corrections: list[TurnCorrection]
) -> list[dict[str, Any]]:
    turns = {
        t.idx: t
        for t in session.execute(
            sa.select(TurnRow).where(col(TurnRow.call_id) == call_id)
        ).scalars()
    }
    out: dict[int, dict[str, Any]] = {}
    for c in corrections:
        turn = turns.get(c.turn_idx)
        if turn is None:
            raise ReviewError(400, f"turn {c.turn_idx}: no such turn in this call")
        text = (c.text or "").strip() or None
        if text == turn.text:
            text = None
        intent = c.intent.value if c.intent and c.intent.value != turn.intent else None
        if text is None and intent is None:
            continue  # nothing changed
        out[c.turn_idx] = {"turn_idx": c.turn_idx, "text": text, "intent": intent}
    return [out[k] for k in sorted(out)]


def give_verdict(
    session: Session, item_id: int, body: VerdictIn, who: Viewer, now: dt.datetime
) -> VerdictRow:
    """Record the verdict (only by the item's claimer) and queue a disposition correction."""
    item = session.get(ReviewItemRow, item_id)
    if item is None:
        raise ReviewError(404, f"no review item {item_id}")
    call = session.get(CallRow, item.call_id)
    assert call is not None
    band = body.corrected_band.value if body.corrected_band else None
    disposition = body.corrected_disposition.value if body.corrected_disposition else None
    band = None if body.agree or band == call.risk_band else band
    disposition = None if body.agree or disposition == call.disposition else disposition
    reason = body.reason.strip()
    if not body.agree and band is None and disposition is None:
        raise ReviewError(400, "an overturn must change the band or the disposition")
    if not body.agree and not reason:
        raise ReviewError(400, "give a reason for overturning")
    turns = _clean_corrections(session, call.id or 0, body.turn_corrections)
    done = session.execute(
        sa.update(ReviewItemRow)
        .where(
            col(ReviewItemRow.id) == item_id,
            col(ReviewItemRow.state) == "claimed",
            col(ReviewItemRow.claimed_by) == who.user_id,
        )
        .values(state="done")
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ReviewError(409, "only the reviewer who claimed this item can give its verdict")
    verdict = VerdictRow(
        review_item_id=item_id, reviewer_id=who.user_id, agree=body.agree,
        corrected_band=band, corrected_disposition=disposition, reason=reason,
        turn_corrections=turns, created_at=now,
    )  # fmt: skip
    session.add(verdict)
    session.flush()
    correction = None
    if disposition is not None:
        account = session.get(AccountRow, call.account_pk)
        assert account is not None
        correction = enqueue_correction(
            session, call, account, disposition=disposition, previous=call.disposition,
            reviewer=who.username, reason=reason, verdict_id=verdict.id, now=now,
        )  # fmt: skip
        session.flush()
    audit(
        session, who.username, "verdict", "review_item", item_id, call_id=call.id,
        agree=body.agree, band=band, disposition=disposition, reason=reason,
        turn_corrections=len(turns), outbox_id=correction.id if correction else None,
    )  # fmt: skip
    session.expire(item)
    return verdict


def _verdict_from_form(form: Any) -> VerdictIn:
    """The page's form: decision, band, disposition, reason, turn_<idx>_text/_intent."""
    corrections: dict[int, dict[str, Any]] = {}
    for key, value in form.multi_items():
        parts = key.split("_")
        if len(parts) == 3 and parts[0] == "turn" and parts[1].isdigit() and value.strip():
            corrections.setdefault(int(parts[1]), {"turn_idx": int(parts[1])})[parts[2]] = value
    decision = form.get("decision")
    if decision not in ("agree", "overturn"):
        raise ReviewError(400, "choose agree or overturn")
    try:
        return VerdictIn(
            agree=decision == "agree",
            corrected_band=form.get("band") or None,
            corrected_disposition=form.get("disposition") or None,
            reason=form.get("reason", ""),
            turn_corrections=[
                TurnCorrection(
                    **{k: v for k, v in c.items() if k in ("turn_idx", "text", "intent")}
                )
                for c in corrections.values()
            ],
        )
    except ValueError as exc:
        raise ReviewError(400, f"invalid verdict: {exc}") from None


# -- pages ------------------------------------------------------------------------------


def _refused(request: Request, who: Viewer, exc: ReviewError) -> HTMLResponse:
    return render(request, "error.html", who, exc.status, status=exc.status, message=exc.message)


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
async def review_page(
    request: Request,
    page: int = Query(1, ge=1),
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> HTMLResponse:
    size = web_settings(request).page_size
    rows, total = open_items(session, clock(request), page, size)
    return render(
        request, "review.html", who, open_rows=rows, total=total, page=page,
        pages=max(1, -(-total // size)), mine=my_items(session, who),
    )  # fmt: skip


@router.get("/review/{item_id}", response_class=HTMLResponse, include_in_schema=False)
async def review_item_page(
    request: Request,
    item_id: int,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> HTMLResponse:
    item = session.get(ReviewItemRow, item_id)
    if item is None:
        raise HTTPException(404, f"no review item {item_id}")
    detail = load_call(session, item.call_id)
    assert detail is not None
    audit(session, who.username, "call_viewed", "call", item.call_id, via="review")
    now = clock(request)
    return render(
        request, "review_item.html", who, **body_context(detail), item=item,
        mine=item.state == "claimed" and item.claimed_by == who.user_id,
        claimable=item.state == "open" or (
            item.state == "claimed" and item.claimed_at is not None
            and item.claimed_at < now - CLAIM_TTL
        ),
        next_id=next_open(session, now, item_id),
        band_choices=[b.value for b in RiskBand], disposition_choices=[d.value for d in Disposition],
        intent_choices=[i.value for i in Intent], error=request.query_params.get("error"),
    )  # fmt: skip


@router.post("/review/{item_id}/claim", include_in_schema=False)
async def claim_page(
    request: Request,
    item_id: int,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> Response:
    try:
        claim(session, item_id, who, clock(request))
    except ReviewError as exc:
        return _refused(request, who, exc)
    return RedirectResponse(f"/review/{item_id}", status_code=303)


@router.post("/review/{item_id}/release", include_in_schema=False)
async def release_page(
    request: Request,
    item_id: int,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> Response:
    try:
        release(session, item_id, who)
    except ReviewError as exc:
        return _refused(request, who, exc)
    return RedirectResponse("/review", status_code=303)


@router.post("/review/{item_id}/verdict", include_in_schema=False)
async def verdict_page(
    request: Request,
    item_id: int,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> Response:
    try:
        give_verdict(
            session, item_id, _verdict_from_form(await request.form()), who, clock(request)
        )
    except ReviewError as exc:
        return _refused(request, who, exc)
    return RedirectResponse(f"/review?done={item_id}", status_code=303)


# -- API --------------------------------------------------------------------------------


class QueueItemOut(BaseModel):
    id: int
    call_id: int
    reason: str = Field(description="suspicious | sample")
    state: str
    created_at: dt.datetime
    claimed_at: dt.datetime | None
    claimed_by: str | None
    started_at: dt.datetime
    outcome: str | None
    risk_band: str | None
    risk_score: float | None
    disposition: str | None
    name: str
    phone: str = Field(description="masked")
    branch: str | None


class QueueOut(BaseModel):
    total_open: int
    page: int
    page_size: int
    open: list[QueueItemOut] = Field(description="claimable, oldest first")
    mine: list[QueueItemOut] = Field(description="claimed by you")


class ClaimOut(BaseModel):
    id: int
    state: str
    claimed_by: str | None
    claimed_at: dt.datetime | None


class VerdictOut(BaseModel):
    id: int
    review_item_id: int
    agree: bool
    corrected_band: str | None
    corrected_disposition: str | None
    reason: str
    turn_corrections: list[dict[str, Any]]
    correction_queued: bool


def _api_error(exc: ReviewError) -> HTTPException:
    return HTTPException(exc.status, exc.message)


@router.get("/api/v1/review", response_model=QueueOut, tags=["review"])
async def api_queue(
    request: Request,
    page: int = Query(1, ge=1),
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> QueueOut:
    """The review queue (claimable items, oldest first) and the items you hold."""
    size = web_settings(request).page_size
    rows, total = open_items(session, clock(request), page, size)
    return QueueOut(
        total_open=total, page=page, page_size=size,
        open=[QueueItemOut(**r.__dict__) for r in rows],
        mine=[QueueItemOut(**r.__dict__) for r in my_items(session, who)],
    )  # fmt: skip


@router.post("/api/v1/review/{item_id}/claim", response_model=ClaimOut, tags=["review"])
async def api_claim(
    request: Request,
    item_id: int,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> ClaimOut:
    """Claim an item (409 if another reviewer holds it)."""
    try:
        claim(session, item_id, who, clock(request))
    except ReviewError as exc:
        raise _api_error(exc) from None
    item = session.get(ReviewItemRow, item_id)
    assert item is not None
    return ClaimOut(
        id=item_id, state=item.state, claimed_by=who.username, claimed_at=item.claimed_at
    )


@router.post("/api/v1/review/{item_id}/release", response_model=ClaimOut, tags=["review"])
async def api_release(
    item_id: int,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> ClaimOut:
    """Give an item you hold back to the queue."""
    try:
        release(session, item_id, who)
    except ReviewError as exc:
        raise _api_error(exc) from None
    return ClaimOut(id=item_id, state="open", claimed_by=None, claimed_at=None)


@router.post("/api/v1/review/{item_id}/verdict", response_model=VerdictOut, tags=["review"])
async def api_verdict(
    request: Request,
    item_id: int,
    body: VerdictIn,
    who: Viewer = Depends(MAY_REVIEW),
    session: Session = Depends(db),
) -> VerdictOut:
    """Agree, or overturn with a corrected band and/or disposition and a reason; an
    overturned disposition is queued to the bank as a correction."""
    try:
        v = give_verdict(session, item_id, body, who, clock(request))
    except ReviewError as exc:
        raise _api_error(exc) from None
    return VerdictOut(
        id=v.id or 0, review_item_id=item_id, agree=v.agree, corrected_band=v.corrected_band,
        corrected_disposition=v.corrected_disposition, reason=present.shown(v.reason),
        turn_corrections=[{**c, "text": present.shown(c["text"]) if c["text"] else None}
                          for c in v.turn_corrections],
        correction_queued=v.corrected_disposition is not None,
    )  # fmt: skip
