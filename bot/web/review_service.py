"""The review queue's rules: listing, claiming, releasing and giving a verdict. The queue
page and its JSON API twin (:mod:`bot.web.routes.review`) call the same functions here and
differ only in how they parse the request and render the answer.

A claim is one conditional UPDATE (open, or claimed longer ago than ``CLAIM_TTL``, or
already the claimer's), so two reviewers never hold one item, even when they click at
the same instant: the database serialises the two updates and the second matches no row.
A verdict is likewise conditional on the item being claimed by its author. An overturned
disposition goes back to the bank as a correction (:mod:`bot.web.corrections`). A
verdict's reason and turn corrections are stored masked, their originals sealed when a
key is configured (:mod:`bot.store.pii`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session, col

from bot.core.masking import mask_phone
from bot.core.vocab import Disposition, Intent, RiskBand
from bot.store.models import (
    AccountRow,
    CallRow,
    CampaignAccountRow,
    CampaignRow,
    ReviewItemRow,
    TurnRow,
    UserRow,
    VerdictRow,
)
from bot.store.pii import Redactor
from bot.store.pii_crypto import KeyRing, process_keyring
from bot.web.audit import audit
from bot.web.config import WebSettings
from bot.web.corrections import enqueue_correction
from bot.web.deps import ServiceRefusal, Viewer
from bot.web.i18n import N_
from bot.web.listing import offset
from bot.web.params import DbId, Index
from nlu.reading.schema import ALL_LABELS

#: A claim older than this lapses: another reviewer may take the item.
CLAIM_TTL = dt.timedelta(minutes=30)
#: An open item older than this is overdue (the queue's SLA column), unless the routes
#: pass ``web.review_sla_hours``: its default (the review dashboard's alert in
#: dashboards/prometheus/alerts.yml uses the same 24 hours).
REVIEW_SLA = WebSettings().review_sla
MAX_TEXT = 2000


class ReviewError(ServiceRefusal):
    """A refused review action (400, 404 or 409) and why (see :class:`ServiceRefusal`)."""


# -- queue ------------------------------------------------------------------------------


# One queue row, as both the queue page and the API show it (phone masked). No docstring:
# it would become the model's description in the published OpenAPI schema.
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
    campaign: str | None
    age_hours: float = Field(description="hours since the item was queued")
    overdue: bool = Field(description="queued longer than the review SLA (24 h)")


#: How the queue is ordered. ``priority``: high band first, then medium, suspicious
#: before sampled, then oldest; ``oldest``; ``newest``; ``score``: highest score first.
QueueSort = Literal["priority", "oldest", "newest", "score"]


class QueueQuery(BaseModel):
    """The queue's filters (``None``: any) and order, from the query string."""

    campaign: DbId | None = Field(None, description="campaign id")
    band: RiskBand | None = None
    reason: Literal["suspicious", "sample"] | None = None
    branch: str | None = Field(None, max_length=60)
    sort: QueueSort = "priority"

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        found = []
        if self.campaign is not None:
            found.append(col(CampaignAccountRow.campaign_id) == self.campaign)
        if self.band is not None:
            found.append(col(CallRow.risk_band) == self.band.value)
        if self.reason is not None:
            found.append(col(ReviewItemRow.reason) == self.reason)
        if self.branch:
            found.append(col(AccountRow.branch) == self.branch)
        return found

    def order(self) -> tuple[Any, ...]:
        if self.sort == "oldest":
            return _OLDEST
        if self.sort == "newest":
            return (col(ReviewItemRow.created_at).desc(), col(ReviewItemRow.id).desc())
        if self.sort == "score":
            return (sa.func.coalesce(col(CallRow.risk_score), -1.0).desc(), *_OLDEST)
        return _PRIORITY

    def as_params(self) -> dict[str, str]:
        """The set filters and a non-default order, as query-string values (for links)."""
        values = self.model_dump(exclude_none=True, mode="json")
        if values.get("sort") == "priority":
            del values["sort"]
        return {k: str(v) for k, v in values.items() if v != ""}


def _claimable(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        col(ReviewItemRow.state) == "open",
        sa.and_(
            col(ReviewItemRow.state) == "claimed", col(ReviewItemRow.claimed_at) < now - CLAIM_TTL
        ),
    )


def is_claimable(item: ReviewItemRow, now: dt.datetime) -> bool:
    """:func:`_claimable` for one loaded item (open, or its claim lapsed)."""
    return item.state == "open" or (
        item.state == "claimed" and item.claimed_at is not None
        and item.claimed_at < now - CLAIM_TTL
    )  # fmt: skip


def _held_by(who: Viewer) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(ReviewItemRow.state) == "claimed", col(ReviewItemRow.claimed_by) == who.user_id
    )


def holds(item: ReviewItemRow, who: Viewer) -> bool:
    """:func:`_held_by` for one loaded item."""
    return item.state == "claimed" and item.claimed_by == who.user_id


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
            col(CampaignRow.name).label("campaign"),
        )
        .select_from(ReviewItemRow)
        .join(CallRow, col(CallRow.id) == ReviewItemRow.call_id)
        .join(AccountRow, col(AccountRow.id) == CallRow.account_pk)
        .outerjoin(UserRow, col(UserRow.id) == ReviewItemRow.claimed_by)
        .outerjoin(CampaignAccountRow, col(CampaignAccountRow.id) == CallRow.campaign_account_id)
        .outerjoin(CampaignRow, col(CampaignRow.id) == CampaignAccountRow.campaign_id)
    )


def _rows(session: Session, stmt: Any, now: dt.datetime, sla: dt.timedelta) -> list[QueueItemOut]:
    out = []
    for r in session.execute(stmt):
        age = now - r.created_at
        out.append(
            QueueItemOut(
                **{**r._asdict(), "phone": mask_phone(r.phone)},
                age_hours=round(max(age.total_seconds(), 0.0) / 3600, 1),
                overdue=age > sla,
            )
        )
    return out


_OLDEST = (col(ReviewItemRow.created_at), col(ReviewItemRow.id))
_PRIORITY = (
    sa.case(
        (col(CallRow.risk_band) == "high", 0), (col(CallRow.risk_band) == "medium", 1), else_=2
    ),
    sa.case((col(ReviewItemRow.reason) == "suspicious", 0), else_=1),
    *_OLDEST,
)
_ANY = QueueQuery()


def open_items(
    session: Session,
    now: dt.datetime,
    page: int,
    page_size: int,
    query: QueueQuery = _ANY,
    *,
    sla: dt.timedelta = REVIEW_SLA,
) -> tuple[list[QueueItemOut], int]:
    """Claimable items (open, or a lapsed claim) that match ``query``, in its order, and
    how many there are."""
    where = [_claimable(now), *query.conditions()]
    stmt = _queue_select().where(*where).order_by(*query.order())
    rows = _rows(session, stmt.limit(page_size).offset(offset(page, page_size)), now, sla)
    total = session.execute(_count_select(query).where(*where)).scalar_one()
    return rows, int(total)


def _count_select(query: QueueQuery) -> Any:
    """The count joins only when a filter reads another table: every item has its call
    and account, so without one the items alone give the same number (at 100,000 calls
    on PostgreSQL the joined count took 60 ms, the items alone 5 ms)."""
    if query.campaign is None and query.band is None and not query.branch:
        return sa.select(sa.func.count()).select_from(ReviewItemRow)
    return _queue_select().with_only_columns(sa.func.count())


def my_items(
    session: Session, who: Viewer, now: dt.datetime, *, sla: dt.timedelta = REVIEW_SLA
) -> list[QueueItemOut]:
    stmt = _queue_select().where(_held_by(who)).order_by(*_OLDEST).limit(100)
    return _rows(session, stmt, now, sla)


def next_open(
    session: Session, now: dt.datetime, after: int, query: QueueQuery = _ANY
) -> int | None:
    """The first claimable item other than ``after`` in the queue's order (for the "next
    item" shortcut)."""
    found = session.execute(
        _queue_select()
        .with_only_columns(col(ReviewItemRow.id))
        .where(_claimable(now), col(ReviewItemRow.id) != after, *query.conditions())
        .order_by(*query.order())
        .limit(1)
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def claim_next(
    session: Session,
    who: Viewer,
    now: dt.datetime,
    query: QueueQuery = _ANY,
    *,
    after: int | None = None,
    tries: int = 5,
) -> int | None:
    """Claim the reviewer's next item and return its id ("submit and next", "skip"):
    other than ``after``, among the items matching ``query``'s filters, one this reviewer
    already holds (so that claims do not pile up), else the first claimable one in the
    queue's order. The claim is the same conditional
    UPDATE as :func:`claim`, so a reviewer who takes the same item an instant earlier
    wins it and this one moves on to the following candidate (up to ``tries`` times)."""
    passed: list[int] = [] if after is None else [after]
    for _ in range(tries):
        found = session.execute(
            _queue_select()
            .with_only_columns(col(ReviewItemRow.id))
            .where(
                sa.or_(_claimable(now), _held_by(who)),
                col(ReviewItemRow.id).not_in(passed),
                *query.conditions(),
            )
            .order_by(sa.case((_held_by(who), 0), else_=1), *query.order())
            .limit(1)
        ).scalar_one_or_none()
        if found is None:
            return None
        item_id = int(found)
        if _update(
            session, item_id, sa.or_(_claimable(now), _held_by(who)),
            state="claimed", claimed_by=who.user_id, claimed_at=now,
        ):  # fmt: skip
            session.expire_all()
            audit(session, who.username, "review_claimed", "review_item", item_id)
            return item_id
        passed.append(item_id)  # taken by someone else meanwhile
    return None


# One reviewer's day and the queue's age, as the review pages and the API show them.
class DeskStats(BaseModel):
    done_today: int = Field(description="verdicts you gave since midnight in web.timezone")
    day_starts: dt.datetime = Field(
        description="midnight in web.timezone (the team's day): where today's count starts"
    )
    open_total: int = Field(description="claimable items, whatever the filters")
    oldest_open_at: dt.datetime | None = Field(description="when the oldest open item was queued")
    queue_age_hours: float | None = Field(description="hours since the oldest open item was queued")
    overdue: bool = Field(description="the oldest open item is past the review SLA")


def team_midnight(now: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The midnight that started ``now``'s day in ``zone`` (aware, in ``zone``)."""
    local = now.astimezone(zone)
    return dt.datetime.combine(local.date(), dt.time(), tzinfo=zone)


def desk_stats(
    session: Session,
    who: Viewer,
    now: dt.datetime,
    *,
    sla: dt.timedelta = REVIEW_SLA,
    zone: dt.tzinfo = dt.UTC,
) -> DeskStats:
    """Today's verdicts by ``who`` and the age of the queue. "Today" is the team's day:
    it starts at midnight in ``zone`` (``web.timezone``), not in UTC, so that a team in
    Shanghai does not see its count reset at 08:00."""
    midnight = team_midnight(now, zone)
    done = session.execute(
        sa.select(sa.func.count())
        .select_from(VerdictRow)
        .where(
            col(VerdictRow.reviewer_id) == who.user_id,
            col(VerdictRow.created_at) >= midnight.astimezone(dt.UTC),
        )
    ).scalar_one()
    total, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(col(ReviewItemRow.created_at))).where(
            _claimable(now)
        )
    ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC
    age = (now - oldest) if oldest is not None else None
    return DeskStats(
        done_today=int(done), day_starts=midnight, open_total=int(total), oldest_open_at=oldest,
        queue_age_hours=round(max(age.total_seconds(), 0.0) / 3600, 1) if age else None,
        overdue=age is not None and age > sla,
    )  # fmt: skip


# -- the item screen's player -----------------------------------------------------------

#: How long a callee's answer is taken to last, per character and as a floor, when the
#: player marks where it starts: a turn's ``at_s`` is when the bot's prompt started or
#: when the callee's answer was heard in full (docs/dashboard.md, "The player").
ANSWER_S_PER_CHAR = 0.35
ANSWER_MIN_S = 1.5


# One transcript turn's place in the recording (seconds from the answer).
class PlayerTurn(BaseModel):
    idx: int
    role: str
    start_s: float
    end_s: float


def player_turns(turns: list[TurnRow], duration_s: float | None) -> list[PlayerTurn]:
    """Where each turn lies in the recording. A bot turn starts at its ``at_s``. A callee
    turn's ``at_s`` is when the answer was heard in full, so its start is estimated from
    the answer's length (never before the previous turn starts); each turn ends where the
    next one starts, the last at the call's end."""
    ordered = sorted(turns, key=lambda t: t.idx)
    starts: list[float] = []
    for n, t in enumerate(ordered):
        previous = starts[n - 1] if n else 0.0
        if t.role == "bot":
            start = max(t.at_s, previous)
        else:
            guess = t.at_s - max(ANSWER_MIN_S, ANSWER_S_PER_CHAR * len(t.text))
            start = max(min(guess, t.at_s), previous)
        starts.append(round(max(start, 0.0), 2))
    last = max([duration_s or 0.0, *(t.at_s for t in ordered)], default=0.0)
    out = []
    for n, t in enumerate(ordered):
        end = starts[n + 1] if n + 1 < len(ordered) else last
        out.append(
            PlayerTurn(
                idx=t.idx, role=t.role, start_s=starts[n], end_s=round(max(end, starts[n]), 2)
            )
        )
    return out


def campaign_choices(session: Session, limit: int = 200) -> list[tuple[int, str]]:
    """Campaigns for the queue's filter (id, name), by name."""
    rows = session.execute(
        sa.select(col(CampaignRow.id), col(CampaignRow.name))
        .order_by(col(CampaignRow.name))
        .limit(limit)
    )
    return [(int(i), str(n)) for i, n in rows]


def item_or_404(session: Session, item_id: int) -> ReviewItemRow:
    item = session.get(ReviewItemRow, item_id)
    if item is None:
        raise ReviewError(404, N_("no review item %(id)s"), id=item_id)
    return item


# -- claim, release, verdict ------------------------------------------------------------


def _update(session: Session, item_id: int, condition: Any, **values: Any) -> bool:
    """Set ``values`` on the item in one UPDATE if ``condition`` holds; whether it did."""
    result = session.execute(
        sa.update(ReviewItemRow)
        .where(col(ReviewItemRow.id) == item_id, condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    matched: int = result.rowcount  # type: ignore[attr-defined]
    return matched == 1


def claim(session: Session, item_id: int, who: Viewer, now: dt.datetime) -> ReviewItemRow:
    """Take the item atomically (404 if there is none, 409 if someone else holds it);
    the claimed item."""
    item = item_or_404(session, item_id)
    taken = _update(
        session, item_id, sa.or_(_claimable(now), _held_by(who)),
        state="claimed", claimed_by=who.user_id, claimed_at=now,
    )  # fmt: skip
    if not taken:
        raise ReviewError(409, N_("another reviewer holds this item, or it is done"))
    session.expire_all()
    audit(session, who.username, "review_claimed", "review_item", item_id)
    return item


def release(session: Session, item_id: int, who: Viewer) -> None:
    """Give a held item back to the queue (404 if there is none, 409 if not held)."""
    if not _update(session, item_id, _held_by(who), state="open", claimed_by=None, claimed_at=None):
        item_or_404(session, item_id)
        raise ReviewError(409, N_("you do not hold this item"))
    session.expire_all()
    audit(session, who.username, "review_released", "review_item", item_id)


class TurnCorrection(BaseModel):
    turn_idx: Index
    text: str | None = Field(None, max_length=MAX_TEXT, description="corrected transcript")
    intent: Intent | None = Field(None, description="corrected intent")
    reading: list[str] | None = Field(
        None,
        max_length=30,
        description="corrected reading: schema values such as acts=confirm, custody=lent "
        "(docs/nlu-schema.md); at least one act",
    )

    @field_validator("reading")
    @classmethod
    def _known_values(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [v for v in value if v not in ALL_LABELS]
        if unknown:
            raise ValueError(f"unknown reading value(s): {', '.join(unknown)}")
        if not any(v.startswith("acts=") for v in value):
            raise ValueError("a reading needs at least one act (acts=...)")
        return sorted(set(value))


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
            raise ReviewError(400, N_("turn %(n)s: no such turn in this call"), n=c.turn_idx)
        text = (c.text or "").strip() or None
        if text == turn.text:
            text = None
        intent = c.intent.value if c.intent and c.intent.value != turn.intent else None
        reading = c.reading if c.reading and c.reading != sorted(turn.reading or []) else None
        if text is None and intent is None and reading is None:
            continue  # nothing changed
        out[c.turn_idx] = {"turn_idx": c.turn_idx, "text": text, "intent": intent}
        if reading is not None:
            out[c.turn_idx]["reading"] = reading
    return [out[k] for k in sorted(out)]


def give_verdict(
    session: Session,
    item_id: int,
    body: VerdictIn,
    who: Viewer,
    now: dt.datetime,
    keys: KeyRing | None = None,
) -> VerdictRow:
    """Record the verdict (only by the item's claimer) and queue a disposition correction.
    ``keys`` seal the typed text's unmasked numbers (default: the process settings')."""
    item = item_or_404(session, item_id)
    call = session.get(CallRow, item.call_id)
    assert call is not None
    band = body.corrected_band.value if body.corrected_band else None
    disposition = body.corrected_disposition.value if body.corrected_disposition else None
    band = None if body.agree or band == call.risk_band else band
    disposition = None if body.agree or disposition == call.disposition else disposition
    reason = body.reason.strip()
    if not body.agree and band is None and disposition is None:
        raise ReviewError(400, N_("an overturn must change the band or the disposition"))
    if not body.agree and not reason:
        raise ReviewError(400, N_("give a reason for overturning"))
    turns = _clean_corrections(session, call.id or 0, body.turn_corrections)
    if not _update(session, item_id, _held_by(who), state="done"):
        raise ReviewError(409, N_("only the reviewer who claimed this item can give its verdict"))
    verdict = VerdictRow(
        review_item_id=item_id, reviewer_id=who.user_id, agree=body.agree,
        corrected_band=band, corrected_disposition=disposition, reason=reason,
        turn_corrections=turns, created_at=now,
    )  # fmt: skip
    redactor = Redactor(keys if keys is not None else process_keyring(), call.id or 0)
    redactor.protect(verdict, "reason", "turn_corrections")
    session.add(verdict)
    session.flush()
    redactor.seal(session)
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
