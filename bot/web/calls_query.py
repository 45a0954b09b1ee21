"""Queries behind the call list, its CSV export and the call detail.

Everything is filtered, counted and paginated in SQL (LIMIT/OFFSET on a page, keyset
batches for the export), so a page costs the same with 100 or 100,000 calls: one
COUNT and one page of rows, ordered by ``started_at DESC, id DESC``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.core.vocab import Disposition, Outcome, RiskBand
from bot.store.models import (
    AccountRow,
    CallRow,
    CampaignAccountRow,
    CampaignRow,
    DispositionRow,
    EntityRow,
    ReviewItemRow,
    RiskAssessmentRow,
    TurnRow,
    VerdictRow,
)
from bot.web.listing import offset, page_count
from bot.web.params import DB_INT_MAX

REVIEW_STATES = ("none", "open", "claimed", "done")
#: The list's orders: ``sort=`` value -> columns (every order ends on the id, so pages
#: never overlap). The CSV export is always newest first (keyset batches).
SORTS: dict[str, tuple[Any, ...]] = {
    "newest": (col(CallRow.started_at).desc(), col(CallRow.id).desc()),
    "oldest": (col(CallRow.started_at).asc(), col(CallRow.id).asc()),
    "score": (col(CallRow.risk_score).desc().nulls_last(), col(CallRow.id).desc()),
    "length": (col(CallRow.duration_s).desc().nulls_last(), col(CallRow.id).desc()),
}
#: The longest search text accepted.
MAX_SEARCH = 60
#: Values of the band filter: the bands, and calls that got none (too few answers).
BAND_FILTERS = (*(b.value for b in RiskBand), "none")
#: Other attempts of the same account shown in the panorama.
MAX_OTHER_ATTEMPTS = 20


class FilterError(ValueError):
    """A filter value that is not in its vocabulary (answered with 400)."""


@dataclass(frozen=True)
class CallFilters:
    """The call list's filters; ``None`` means "any". Dates are UTC days, inclusive."""

    campaign: int | None = None
    outcome: str | None = None
    band: str | None = None
    disposition: str | None = None
    review: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    branch: str | None = None
    #: Search: an account number, a phone number (or its last digits), or a name.
    q: str | None = None
    sort: str = "newest"

    @classmethod
    def parse(cls, **raw: str | None) -> CallFilters:
        """From query-string values (blank = any); raises :class:`FilterError`."""
        v = {k: (s.strip() if s else None) or None for k, s in raw.items()}
        return cls(
            campaign=_int(v.get("campaign"), "campaign"),
            outcome=_among(v.get("outcome"), [o.value for o in Outcome], "outcome"),
            band=_among(v.get("band"), BAND_FILTERS, "band"),
            disposition=_among(v.get("disposition"), [d.value for d in Disposition], "disposition"),
            review=_among(v.get("review"), REVIEW_STATES, "review"),
            date_from=_date(v.get("date_from"), "date_from"),
            date_to=_date(v.get("date_to"), "date_to"),
            branch=v.get("branch"),
            q=_search(v.get("q")),
            sort=_among(v.get("sort"), tuple(SORTS), "sort") or "newest",
        )

    def as_params(self) -> dict[str, str]:
        """The set filters as query-string values (for links, the audit log, the API);
        the default order is left out."""
        return {
            k: str(value)
            for k, value in asdict(self).items()
            if value is not None and not (k == "sort" and value == "newest")
        }


def _int(value: str | None, name: str) -> int | None:
    """An id: a number in the range of the id columns (a larger one fails the query)."""
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise FilterError(f"{name}: not a number") from None
    if not 1 <= number <= DB_INT_MAX:
        raise FilterError(f"{name}: not an id (1 to {DB_INT_MAX})")
    return number


def _among(value: str | None, allowed: tuple[str, ...] | list[str], name: str) -> str | None:
    if value is not None and value not in allowed:
        raise FilterError(f"{name}: one of {', '.join(allowed)}")
    return value


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name}: a date YYYY-MM-DD") from None
    if day >= dt.date.max:  # the day after it, where a range ends, does not exist
        raise FilterError(f"{name}: a date before {dt.date.max}")
    return day


def _search(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_SEARCH:
        raise FilterError(f"q: at most {MAX_SEARCH} characters")
    return value


def _like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (a backslash escapes % and _)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_condition(q: str) -> sa.ColumnElement[bool]:
    """Calls whose account matches ``q``: digits (spaces and dashes ignored) match an
    account number's start or a phone number's end (the last four digits are enough,
    a full number with or without +86 too); other text matches the holder's name or the
    account number. Through ``account_pk IN (...)``, like the other filters."""
    digits = "".join(ch for ch in q if ch.isdigit())
    compact = q.replace(" ", "").replace("-", "")
    accounts = sa.select(col(AccountRow.id))
    if digits and compact.lstrip("+") == digits:
        national = digits[2:] if digits.startswith("86") and len(digits) > 11 else digits
        matched = accounts.where(
            sa.or_(
                col(AccountRow.account_id).like(f"{_like(digits)}%", escape="\\"),
                col(AccountRow.phone_e164).like(f"%{_like(national)}", escape="\\"),
            )
        )
    else:
        matched = accounts.where(
            sa.or_(
                col(AccountRow.name).like(f"%{_like(q)}%", escape="\\"),
                col(AccountRow.account_id) == q,
            )
        )
    return col(CallRow.account_pk).in_(matched)


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


# -- list -------------------------------------------------------------------------------

_COLUMNS: tuple[Any, ...] = (
    col(CallRow.id),
    col(CallRow.started_at),
    col(CallRow.duration_s),
    col(CallRow.outcome),
    col(CallRow.risk_band),
    col(CallRow.risk_score),
    col(CallRow.disposition),
    col(CallRow.attempt_no),
    col(AccountRow.account_id),
    col(AccountRow.name),
    col(AccountRow.phone_e164),
    col(AccountRow.branch),
    col(CampaignRow.id).label("campaign_id"),
    col(CampaignRow.name).label("campaign"),
    col(ReviewItemRow.state).label("review_state"),
    col(ReviewItemRow.reason).label("review_reason"),
)


@dataclass(frozen=True)
class CallSummary:
    """One row of the call list (unmasked: the caller masks for display)."""

    id: int
    started_at: dt.datetime
    duration_s: float | None
    outcome: str | None
    risk_band: str | None
    risk_score: float | None
    disposition: str | None
    attempt_no: int
    account_id: str
    name: str
    phone_e164: str
    branch: str | None
    campaign_id: int | None
    campaign: str | None
    review_state: str | None
    review_reason: str | None


@dataclass(frozen=True)
class Page:
    rows: list[CallSummary]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.page_size)


def _joined(stmt: Any) -> Any:
    return (
        stmt.select_from(CallRow)
        .join(AccountRow, col(AccountRow.id) == CallRow.account_pk)
        .outerjoin(CampaignAccountRow, col(CampaignAccountRow.id) == CallRow.campaign_account_id)
        .outerjoin(CampaignRow, col(CampaignRow.id) == CampaignAccountRow.campaign_id)
        .outerjoin(ReviewItemRow, col(ReviewItemRow.call_id) == CallRow.id)
    )


def _review_exists(state: str | None = None) -> sa.Exists:
    q = sa.select(sa.literal(1)).where(col(ReviewItemRow.call_id) == CallRow.id)
    if state is not None:
        q = q.where(col(ReviewItemRow.state) == state)
    return q.exists()


def _where(f: CallFilters) -> list[sa.ColumnElement[bool]]:
    """Conditions on ``call_attempt`` alone (other tables through IN / EXISTS), so
    filtering, counting and paging never join: the planner walks the ``started_at``
    index and stops after one page."""
    conds: list[sa.ColumnElement[bool]] = []
    if f.campaign is not None:
        conds.append(
            col(CallRow.campaign_account_id).in_(
                sa.select(col(CampaignAccountRow.id)).where(
                    col(CampaignAccountRow.campaign_id) == f.campaign
                )
            )
        )
    if f.outcome:
        conds.append(col(CallRow.outcome) == f.outcome)
    if f.band == "none":
        conds.append(col(CallRow.risk_band).is_(None))
    elif f.band:
        conds.append(col(CallRow.risk_band) == f.band)
    if f.disposition:
        conds.append(col(CallRow.disposition) == f.disposition)
    if f.review == "none":
        conds.append(~_review_exists())
    elif f.review:
        conds.append(_review_exists(f.review))
    if f.date_from:
        conds.append(col(CallRow.started_at) >= _day_start(f.date_from))
    if f.date_to:
        conds.append(col(CallRow.started_at) < _day_start(f.date_to + dt.timedelta(days=1)))
    if f.branch:
        conds.append(
            col(CallRow.account_pk).in_(
                sa.select(col(AccountRow.id)).where(col(AccountRow.branch) == f.branch)
            )
        )
    if f.q:
        conds.append(search_condition(f.q))
    return conds


#: Newest first: the default page order and the export's keyset order.
_ORDER = SORTS["newest"]


def count_calls(session: Session, f: CallFilters) -> int:
    stmt = sa.select(sa.func.count()).select_from(CallRow).where(*_where(f))
    return int(session.execute(stmt).scalar_one())


def _summaries(
    session: Session, ids: list[int], order: tuple[Any, ...] = _ORDER
) -> list[CallSummary]:
    """The display columns of ``ids`` (one page), in ``order``."""
    if not ids:
        return []
    stmt = _joined(sa.select(*_COLUMNS)).where(col(CallRow.id).in_(ids)).order_by(*order)
    return [CallSummary(**r._asdict()) for r in session.execute(stmt)]


def list_calls(session: Session, f: CallFilters, page: int, page_size: int) -> Page:
    """One page (1-based; past the end gives an empty page) and the total."""
    page, order = max(1, page), SORTS[f.sort]
    ids = session.execute(
        sa.select(col(CallRow.id))
        .where(*_where(f))
        .order_by(*order)
        .limit(page_size)
        .offset(offset(page, page_size))
    ).scalars()
    return Page(_summaries(session, list(ids), order), count_calls(session, f), page, page_size)


def iter_calls(session: Session, f: CallFilters, batch: int = 1000) -> Iterator[CallSummary]:
    """Every matching call, newest first, fetched in keyset batches (for the export)."""
    after: tuple[dt.datetime, int] | None = None
    while True:
        stmt = sa.select(col(CallRow.id), col(CallRow.started_at)).where(*_where(f))
        if after is not None:
            stmt = stmt.where(
                sa.or_(
                    col(CallRow.started_at) < after[0],
                    sa.and_(col(CallRow.started_at) == after[0], col(CallRow.id) < after[1]),
                )
            )
        keys = session.execute(stmt.order_by(*_ORDER).limit(batch)).all()
        yield from _summaries(session, [k.id for k in keys])
        if len(keys) < batch:
            return
        after = (keys[-1].started_at, keys[-1].id)


def distinct_values(session: Session) -> dict[str, list[Any]]:
    """Choices for the filter form: campaigns (id, name) and branches."""
    campaigns = session.execute(
        sa.select(col(CampaignRow.id), col(CampaignRow.name))
        .order_by(col(CampaignRow.id).desc())
        .limit(200)
    ).all()
    branches = session.execute(
        sa.select(col(AccountRow.branch))
        .where(col(AccountRow.branch).is_not(None))
        .distinct()
        .order_by(col(AccountRow.branch))
        .limit(500)
    ).scalars()
    return {"campaigns": [tuple(c) for c in campaigns], "branches": list(branches)}


# -- detail -----------------------------------------------------------------------------


@dataclass
class CallDetail:
    """Everything the call detail shows (unmasked: the caller masks for display)."""

    call: CallRow
    account: AccountRow
    campaign: CampaignRow | None
    turns: list[TurnRow]
    entities: dict[int, list[EntityRow]]
    assessment: RiskAssessmentRow | None
    dispositions: list[DispositionRow]
    review: ReviewItemRow | None
    verdicts: list[VerdictRow]
    other_attempts: list[CallRow] = field(default_factory=list)


def load_call(session: Session, call_id: int) -> CallDetail | None:
    call = session.get(CallRow, call_id)
    if call is None:
        return None
    account = session.get(AccountRow, call.account_pk)
    assert account is not None  # a foreign key
    campaign = None
    if call.campaign_account_id is not None:
        item = session.get(CampaignAccountRow, call.campaign_account_id)
        campaign = session.get(CampaignRow, item.campaign_id) if item else None
    entities: dict[int, list[EntityRow]] = {}
    for e in session.exec(
        select(EntityRow).where(EntityRow.call_id == call_id).order_by(col(EntityRow.id))
    ):
        entities.setdefault(e.turn_idx, []).append(e)
    review = session.exec(select(ReviewItemRow).where(ReviewItemRow.call_id == call_id)).first()
    verdicts = (
        list(
            session.exec(
                select(VerdictRow)
                .where(VerdictRow.review_item_id == review.id)
                .order_by(col(VerdictRow.id))
            )
        )
        if review
        else []
    )
    return CallDetail(
        call=call,
        account=account,
        campaign=campaign,
        turns=list(
            session.exec(
                select(TurnRow).where(TurnRow.call_id == call_id).order_by(col(TurnRow.idx))
            )
        ),
        entities=entities,
        assessment=session.exec(
            select(RiskAssessmentRow).where(RiskAssessmentRow.call_id == call_id)
        ).first(),
        dispositions=list(
            session.exec(
                select(DispositionRow)
                .where(DispositionRow.call_id == call_id)
                .order_by(col(DispositionRow.id))
            )
        ),
        review=review,
        verdicts=verdicts,
        other_attempts=list(
            session.exec(
                select(CallRow)
                .where(CallRow.account_pk == call.account_pk, col(CallRow.id) != call_id)
                .order_by(col(CallRow.started_at).desc(), col(CallRow.id).desc())
                .limit(MAX_OTHER_ATTEMPTS)
            )
        ),
    )
