"""What a call looks like on screen and over the API: one set of pydantic view models.

A call is loaded once (:class:`~bot.web.calls_query.CallDetail`, unmasked rows) and turned
into a :class:`CallView` by :func:`call_view`, the only place that decides what of it is
masked. The call detail page, the review item page and ``GET /api/v1/calls/{id}`` all
render that same object, so a number masked on the page is masked in the JSON by the
same code. A list row is a :class:`CallSummaryView` (:func:`summary_view`), used by the
call list page, its CSV export and ``GET /api/v1/calls``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from markupsafe import Markup
from pydantic import BaseModel, Field

from bot.core.masking import mask_phone
from bot.core.vocab import SENSITIVE_LABELS
from bot.store.models import EntityRow, TurnRow, VerdictRow
from bot.web import present
from bot.web.calls_query import CallDetail, CallSummary


class CallSummaryView(BaseModel):
    """A row of the call list, masked."""

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


def summary_view(row: CallSummary) -> CallSummaryView:
    """A list row as shown: numbers masked (lists never reveal)."""
    return CallSummaryView(
        id=row.id, started_at=row.started_at, duration_s=row.duration_s, outcome=row.outcome,
        risk_band=row.risk_band, risk_score=row.risk_score, disposition=row.disposition,
        attempt_no=row.attempt_no, account_id=present.account_id(row.account_id),
        name=row.name, phone=mask_phone(row.phone_e164), branch=row.branch,
        campaign_id=row.campaign_id, campaign=row.campaign, review_state=row.review_state,
        review_reason=row.review_reason,
    )  # fmt: skip


class EntityView(BaseModel):
    label: str
    text: str
    value: str
    start: int = Field(description="offset in the stored turn text")
    end: int
    negated: bool


class SpanView(BaseModel):
    """A piece of a turn's text, masked; ``label`` is set where an entity was found."""

    text: str
    label: str | None = None
    value: str = ""
    negated: bool = False


class TurnView(BaseModel):
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
    entities: list[EntityView]
    pieces: list[SpanView] = Field(description="the text split at its entities, masked")

    @property
    def html(self) -> Markup:
        """The text with its entities highlighted (escaped; for the pages)."""
        return present.highlight([present.Span(**p.model_dump()) for p in self.pieces])


class ScoreView(BaseModel):
    score: float
    band: str | None
    prior: float
    prior_contribution: float
    logit: float
    severe: bool
    ruleset_version: str
    band_reason: str
    rules: list[present.ExplanationRow] = Field(
        description="fired rules, largest contribution first"
    )


class DispositionView(BaseModel):
    disposition: str
    situation: str
    source: str
    needs_review: bool
    sampled: bool
    created_at: dt.datetime


class AttemptView(BaseModel):
    id: int
    started_at: dt.datetime
    attempt_no: int
    outcome: str | None
    risk_band: str | None
    disposition: str | None


class AccountView(BaseModel):
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


class ReviewView(BaseModel):
    id: int
    state: str
    reason: str


class VerdictView(BaseModel):
    """A reviewer's verdict on the call, its free text masked."""

    id: int
    review_item_id: int
    agree: bool
    corrected_band: str | None
    corrected_disposition: str | None
    reason: str
    turn_corrections: list[dict[str, Any]]


class CallView(BaseModel):
    """One call as the pages and the API show it (masked unless ``revealed``)."""

    id: int
    account_pk: int = Field(description="the account's row id (its network page)")
    campaign: str | None
    campaign_id: int | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: float | None
    attempt_no: int
    outcome: str | None
    ended_by: str | None
    script: str | None = Field(description="script id@version")
    ruleset_version: str | None
    nlu_model: str | None = Field(description="the reading model version that judged the call")
    risk_score: float | None
    risk_band: str | None
    disposition: str | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    error: str = Field(description="why the call failed, masked; empty when it did not")
    has_recording: bool
    revealed: bool = Field(description="true only in a reveal's response")
    account: AccountView
    turns: list[TurnView]
    score: ScoreView | None
    dispositions: list[DispositionView]
    review: ReviewView | None
    verdicts: list[VerdictView]
    other_attempts: list[AttemptView]


def verdict_view(v: VerdictRow, reveal: bool = False) -> VerdictView:
    """A verdict as shown: its reason and corrected turn texts masked."""
    return VerdictView(
        id=v.id or 0, review_item_id=v.review_item_id, agree=v.agree,
        corrected_band=v.corrected_band, corrected_disposition=v.corrected_disposition,
        reason=present.shown(v.reason, reveal),
        turn_corrections=[
            {**c, "text": present.shown(c["text"], reveal) if c.get("text") else None}
            for c in v.turn_corrections or []
        ],
    )  # fmt: skip


def _entity_view(e: EntityRow, reveal: bool) -> EntityView:
    text = e.text
    if not reveal:
        sensitive = e.label in SENSITIVE_LABELS
        text = present.mask_sensitive(e.label, text) if sensitive else present.shown(text)
    return EntityView(
        label=e.label, text=text, value=present.entity_value(e, reveal),
        start=e.start, end=e.end, negated=e.negated,
    )  # fmt: skip


def _turn_view(t: TurnRow, entities: list[EntityRow], reveal: bool) -> TurnView:
    """A turn, masked piece by piece at its entities; its ``text`` is those pieces joined,
    so the page's highlighted text and the API's plain text are the same characters."""
    pieces = [SpanView(**s.__dict__) for s in present.spans(t.text, entities, reveal)]
    return TurnView(
        idx=t.idx, role=t.role, at_s=t.at_s, latency_ms=t.latency_ms, node_id=t.node_id,
        topic=t.topic, event=t.event, text="".join(p.text for p in pieces), intent=t.intent,
        intent_confidence=t.intent_confidence, reading=list(t.reading or []),
        entities=[_entity_view(e, reveal) for e in entities], pieces=pieces,
    )  # fmt: skip


def call_view(detail: CallDetail, *, has_recording: bool, reveal: bool = False) -> CallView:
    """The one masking of a call: every number in it masked unless ``reveal`` (which
    only a ``reveal_pii`` route with a reason and an audit event passes)."""
    c, a, ra = detail.call, detail.account, detail.assessment
    return CallView(
        id=c.id or 0, account_pk=c.account_pk,
        campaign=detail.campaign.name if detail.campaign else None,
        campaign_id=detail.campaign.id if detail.campaign else None,
        started_at=c.started_at, ended_at=c.ended_at, duration_s=c.duration_s,
        attempt_no=c.attempt_no, outcome=c.outcome, ended_by=c.ended_by,
        script=f"{c.script_id}@v{c.script_version}" if c.script_id else None,
        ruleset_version=c.ruleset_version, nlu_model=c.nlu_version,
        risk_score=c.risk_score, risk_band=c.risk_band, disposition=c.disposition,
        latency_p50_ms=c.latency_p50_ms, latency_p95_ms=c.latency_p95_ms,
        error=present.shown(c.error, reveal), has_recording=has_recording, revealed=reveal,
        account=AccountView(
            account_id=present.account_id(a.account_id, reveal), name=a.name,
            phone=present.phone(a, reveal), id_number=present.id_number(a, reveal),
            card_last4=a.card_last4, scenario=a.scenario, model_score=a.model_score,
            branch=a.branch, txn_amount=a.txn_amount, txn_date=a.txn_date,
            txn_counterparty=a.txn_counterparty,
        ),
        turns=[_turn_view(t, detail.entities.get(t.idx, []), reveal) for t in detail.turns],
        score=ScoreView(
            score=ra.score, band=ra.band, prior=ra.prior,
            prior_contribution=ra.prior_contribution, logit=ra.logit, severe=ra.severe,
            ruleset_version=ra.ruleset_version,
            band_reason=present.shown(ra.band_reason, reveal),
            rules=present.explanation_rows(ra.explanation, reveal),
        ) if ra else None,
        dispositions=[
            DispositionView(
                disposition=d.disposition, situation=d.situation, source=d.source,
                needs_review=d.needs_review, sampled=d.sampled, created_at=d.created_at,
            )
            for d in detail.dispositions
        ],
        review=ReviewView(id=detail.review.id or 0, state=detail.review.state,
                          reason=detail.review.reason) if detail.review else None,
        verdicts=[verdict_view(v, reveal) for v in detail.verdicts],
        other_attempts=[
            AttemptView(
                id=o.id or 0, started_at=o.started_at, attempt_no=o.attempt_no,
                outcome=o.outcome, risk_band=o.risk_band, disposition=o.disposition,
            )
            for o in detail.other_attempts
        ],
    )  # fmt: skip
