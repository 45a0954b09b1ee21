"""The database schema (SQLModel). SQLite by default, PostgreSQL at scale; Alembic
migrations under ``bot/store/migrations`` create and evolve it.

Conventions: datetimes are timezone-aware UTC (SQLModel's ``UTCDateTime`` stores them
portably on both engines and hands them back in UTC);
vocabulary values (outcome, band, disposition...) are stored as their strings; JSON
columns are JSONB on PostgreSQL. The account's own fields (phone, ID number) are stored
as the bank gives them and are masked wherever they are shown or logged; numbers in what
callees and reviewers say (turns, entities, evidence, verdicts) are stored masked, their
originals sealed in ``pii_secret`` when a key is configured (docs/pii-storage.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    """Aware UTC now: the only kind of datetime stored."""
    return dt.datetime.now(dt.UTC)


def _json(**kw: Any) -> Any:
    return Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False), **kw)


def _json_list(**kw: Any) -> Any:
    return Field(default_factory=list, sa_column=sa.Column(JSONType, nullable=False), **kw)


# -- accounts and campaigns -------------------------------------------------------------


class AccountRow(SQLModel, table=True):
    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    #: The bank's account identifier (unique; re-imports upsert on it).
    account_id: str = Field(index=True, unique=True, max_length=40)
    name: str = Field(max_length=100)
    #: As given by the bank, and normalised to E.164 for dialling and the DNC list.
    phone: str = Field(max_length=40)
    phone_e164: str = Field(index=True, max_length=20)
    card_last4: str | None = Field(default=None, max_length=4)
    id_number: str | None = Field(default=None, max_length=20)
    scenario: str = Field(max_length=20)
    model_score: float
    branch: str | None = Field(default=None, index=True, max_length=60)
    gender: str | None = Field(default=None, max_length=1)
    timezone: str = Field(default="Asia/Shanghai", max_length=40)
    txn_amount: float | None = None
    txn_date: dt.date | None = None
    txn_counterparty: str | None = Field(default=None, max_length=100)
    extra: dict[str, Any] = _json()
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class CampaignRow(SQLModel, table=True):
    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    #: draft | running | paused | cancelled | completed
    state: str = Field(default="draft", index=True, max_length=12)
    max_attempts: int = 3
    #: Minutes to wait before attempt 2, 3, ... (the last value repeats).
    backoff_minutes: list[int] = _json_list()
    #: Calling window in the callee's local time, "HH:MM".
    window_start: str = Field(default="09:00", max_length=5)
    window_end: str = Field(default="20:00", max_length=5)
    #: ISO weekdays on which calls may be placed (1 = Monday).
    weekdays: list[int] = _json_list()
    #: Dates (ISO) on which no calls are placed.
    holidays: list[str] = _json_list()
    max_concurrency: int = 10
    created_at: dt.datetime = Field(default_factory=utcnow)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


class CampaignAccountRow(SQLModel, table=True):
    """One account's work item in one campaign: the unit workers claim.

    A partial unique index allows at most one ``in_progress`` item per account across
    all campaigns: never two live calls to one account.
    """

    __tablename__ = "campaign_account"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "account_pk", name="uq_campaign_account"),
        sa.Index(
            "uq_one_live_call_per_account",
            "account_pk",
            unique=True,
            sqlite_where=sa.text("state = 'in_progress'"),
            postgresql_where=sa.text("state = 'in_progress'"),
        ),
        sa.Index("ix_campaign_account_due", "state", "next_attempt_at"),
        sa.Index("ix_campaign_account_campaign_state", "campaign_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    account_pk: int = Field(foreign_key="account.id", index=True)
    #: queued | in_progress | done | cancelled
    state: str = Field(default="queued", max_length=12)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow)
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_expires_at: dt.datetime | None = None
    last_outcome: str | None = Field(default=None, max_length=20)
    final_disposition: str | None = Field(default=None, max_length=30)
    updated_at: dt.datetime = Field(default_factory=utcnow)


# -- calls and what they produced -------------------------------------------------------


class CallRow(SQLModel, table=True):
    """One call attempt and its result (the versions of script and rules that drove it)."""

    __tablename__ = "call_attempt"
    __table_args__ = (
        sa.Index("ix_call_attempt_started_id", "started_at", "id"),
        # the call list by score (migration 0011: descending, NULLs last, on both engines)
        sa.Index(
            "ix_call_attempt_score",
            sa.desc(sa.column("risk_score")).nulls_last(),
            sa.desc(sa.column("id")),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_account_id: int | None = Field(
        default=None, foreign_key="campaign_account.id", index=True
    )
    account_pk: int = Field(foreign_key="account.id", index=True)
    attempt_no: int = 1
    worker_id: str | None = Field(default=None, max_length=80)
    started_at: dt.datetime = Field(default_factory=utcnow, index=True)
    ended_at: dt.datetime | None = None
    duration_s: float | None = None
    outcome: str | None = Field(default=None, index=True, max_length=20)
    ended_by: str | None = Field(default=None, max_length=30)
    script_id: str | None = Field(default=None, max_length=60)
    script_version: int | None = None
    script_digest: str | None = Field(default=None, max_length=64)
    ruleset_version: str | None = Field(default=None, max_length=40)
    #: The answer-reading model that judged the call (``nlu_model_version.version``).
    nlu_version: str | None = Field(default=None, max_length=60)
    risk_score: float | None = None
    risk_band: str | None = Field(default=None, index=True, max_length=8)
    disposition: str | None = Field(default=None, index=True, max_length=30)
    needs_review: bool = False
    identity_confirmed: bool = False
    recording_path: str | None = Field(default=None, max_length=400)
    error: str | None = None
    #: Turn latency of the call (end of callee speech -> first bot audio on the wire).
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None


class TurnRow(SQLModel, table=True):
    __tablename__ = "turn"
    __table_args__ = (sa.Index("ix_turn_call_idx", "call_id", "idx"),)

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call_attempt.id", index=True)
    idx: int
    role: str = Field(max_length=8)
    at_s: float = 0.0
    node_id: str = Field(max_length=60)
    topic: str = Field(max_length=30)
    text: str
    event: str = Field(max_length=12)
    intent: str | None = Field(default=None, max_length=30)
    intent_confidence: float | None = None
    intent_source: str | None = Field(default=None, max_length=8)
    decision: str = ""
    #: For a bot turn that answered the callee: its turn latency on the phone line.
    latency_ms: float | None = None
    #: What the callee's answer meant: the reading's schema values (``custody=lent``...).
    reading: list[str] = _json_list()


class EntityRow(SQLModel, table=True):
    __tablename__ = "extracted_entity"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call_attempt.id", index=True)
    turn_idx: int
    label: str = Field(max_length=20, index=True)
    value: str
    text: str
    start: int
    end: int
    negated: bool = False


class RiskAssessmentRow(SQLModel, table=True):
    __tablename__ = "risk_assessment"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call_attempt.id", unique=True)
    score: float
    band: str | None = Field(default=None, max_length=8)
    prior: float
    prior_contribution: float
    logit: float
    severe: bool = False
    ruleset_version: str = Field(max_length=40)
    band_reason: str = ""
    #: Each fired feature: id, description, category, weight, hits, contribution, evidence.
    explanation: list[dict[str, Any]] = _json_list()


class DispositionRow(SQLModel, table=True):
    __tablename__ = "disposition"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call_attempt.id", index=True)
    account_pk: int = Field(foreign_key="account.id", index=True)
    disposition: str = Field(max_length=30)
    situation: str = Field(max_length=30)
    needs_review: bool = False
    sampled: bool = False
    #: "bot" for the call's own decision, "review" for a reviewer's correction.
    source: str = Field(default="bot", max_length=10)
    created_at: dt.datetime = Field(default_factory=utcnow)


class OutboxRow(SQLModel, table=True):
    """A disposition to deliver to the bank, written in the same transaction as the call."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    disposition_id: int = Field(foreign_key="disposition.id", index=True)
    idempotency_key: str = Field(unique=True, max_length=80)
    kind: str = Field(default="disposition", max_length=12)  # disposition | correction
    payload: dict[str, Any] = _json()
    #: pending | delivered | dead
    state: str = Field(default="pending", max_length=10)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow)
    last_error: str | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
    delivered_at: dt.datetime | None = None
    #: The claim token of the deliverer sending it now, and until when that claim holds;
    #: an item whose deliverer died becomes claimable again once the lease expires.
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_expires_at: dt.datetime | None = None


# -- review -----------------------------------------------------------------------------


class ReviewItemRow(SQLModel, table=True):
    __tablename__ = "review_item"
    __table_args__ = (
        sa.Index("ix_review_item_state_created", "state", "created_at", "id"),
        sa.Index("ix_review_item_claimed_by", "claimed_by"),
    )

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call_attempt.id", unique=True)
    #: suspicious | sample
    reason: str = Field(max_length=12)
    #: open | claimed | done
    state: str = Field(default="open", index=True, max_length=8)
    claimed_by: int | None = Field(default=None, foreign_key="app_user.id")
    claimed_at: dt.datetime | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)


class VerdictRow(SQLModel, table=True):
    __tablename__ = "verdict"
    __table_args__ = (sa.Index("ix_verdict_created_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    review_item_id: int = Field(foreign_key="review_item.id", index=True)
    reviewer_id: int = Field(foreign_key="app_user.id")
    agree: bool
    corrected_band: str | None = Field(default=None, max_length=8)
    corrected_disposition: str | None = Field(default=None, max_length=30)
    reason: str = ""
    #: Per-turn corrections: [{turn_idx, text, intent}].
    turn_corrections: list[dict[str, Any]] = _json_list()
    created_at: dt.datetime = Field(default_factory=utcnow)


class PiiSecretRow(SQLModel, table=True):
    """The unmasked original of one masked value, sealed (AES-256-GCM, see
    :mod:`bot.store.pii_crypto`). Written only when a key is configured; opened only by
    the audited reveal. ``(table_name, row_id, column_name)`` is the associated data."""

    __tablename__ = "pii_secret"
    __table_args__ = (
        sa.UniqueConstraint("table_name", "row_id", "column_name", name="uq_pii_secret_cell"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: The call the value belongs to (a reveal opens one call's values).
    call_id: int = Field(foreign_key="call_attempt.id", index=True)
    table_name: str = Field(max_length=30)
    row_id: int
    column_name: str = Field(max_length=30)
    #: Fingerprint of the key that sealed it (keys rotate; old ones still open).
    key_id: str = Field(max_length=16, index=True)
    nonce: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    #: The original value as JSON text, encrypted (with its tag).
    ciphertext: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)


# -- governance -------------------------------------------------------------------------


class _PublishedDocument(SQLModel):
    """Columns shared by compliance-owned documents that go through review and publish."""

    digest: str = Field(max_length=64)
    source: str
    #: draft | pending | published | retired
    state: str = Field(default="draft", max_length=10)
    author_id: int | None = Field(default=None, foreign_key="app_user.id")
    approved_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: dt.datetime = Field(default_factory=utcnow)
    published_at: dt.datetime | None = None


class ScriptVersionRow(_PublishedDocument, table=True):
    __tablename__ = "script_version"
    __table_args__ = (sa.UniqueConstraint("script_id", "version", name="uq_script_version"),)

    id: int | None = Field(default=None, primary_key=True)
    script_id: str = Field(max_length=60, index=True)
    version: int


class RulesetVersionRow(_PublishedDocument, table=True):
    __tablename__ = "ruleset_version"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=40, unique=True)


class NluModelVersionRow(SQLModel, table=True):
    """A trained answer-reading model awaiting or past a second person's approval.

    The model's files travel as one zip (``archive``, a few MB) so that every worker,
    wherever it runs, loads exactly what was approved (``digest`` = sha256 of the zip).
    """

    __tablename__ = "nlu_model_version"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=60, unique=True)
    digest: str = Field(max_length=64)
    archive: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    #: pending | published | retired | rejected
    state: str = Field(default="pending", max_length=10, index=True)
    author: str = Field(max_length=80)
    approved_by: str | None = Field(default=None, max_length=80)
    #: The training summary: rows, held-out figures (utterances and personas).
    report: dict[str, Any] = _json()
    created_at: dt.datetime = Field(default_factory=utcnow)
    published_at: dt.datetime | None = None


class UserRow(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=60)
    password_hash: str = Field(max_length=200)
    #: reviewer | compliance | supervisor | admin
    role: str = Field(max_length=12)
    failed_logins: int = 0
    locked_until: dt.datetime | None = None
    disabled: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow)


class WebSessionRow(SQLModel, table=True):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is
    stored, so a database dump cannot be replayed as a login."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    #: The form token this session's pages embed (double-submit is not needed: it is
    #: checked against this server-side value).
    csrf_token: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_seen_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime = Field(index=True)


class AuditEventRow(SQLModel, table=True):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_actor_at", "actor", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=60)
    action: str = Field(max_length=40, index=True)
    object_type: str = Field(default="", max_length=30)
    object_id: str = Field(default="", max_length=60)
    detail: dict[str, Any] = _json()


class DncEntryRow(SQLModel, table=True):
    __tablename__ = "dnc_entry"

    id: int | None = Field(default=None, primary_key=True)
    phone_e164: str = Field(unique=True, max_length=20)
    reason: str = ""
    added_at: dt.datetime = Field(default_factory=utcnow)


class ApiTokenRow(SQLModel, table=True):
    """A machine's credential for the JSON API (``Authorization: Bearer``), created by an
    admin with one dashboard role. Only the SHA-256 of the secret is stored (the secret
    is 256 random bits, so a fast hash is enough: there is nothing to guess), plus its
    first characters for display; revoked and expired tokens stay for the audit trail.
    Several tokens may share a name, but only one of them may be live (bot.web.tokens)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=60, index=True)
    #: reviewer | compliance | supervisor | admin
    role: str = Field(max_length=12)
    secret_hash: str = Field(max_length=64, unique=True)
    #: The secret's first characters, to tell tokens apart in lists and logs.
    prefix: str = Field(max_length=16)
    #: Who created it: an admin's user name, or ``cli``.
    created_by: str = Field(max_length=60)
    created_at: dt.datetime = Field(default_factory=utcnow)
    last_used_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


# -- the accounts' network --------------------------------------------------------------


class EntityLinkRow(SQLModel, table=True):
    """One thing an account is tied to: a phone, card, ID number, person or employer,
    from the account's own data or named in one of its calls (:mod:`bot.store.links`).
    Two accounts sharing ``(kind, link_key)`` are linked. For numbers ``link_key`` is a
    keyed hash (HMAC-SHA256) of the normalised full number, never the number; for names
    it is the normalised name. ``shown`` is what pages display (numbers masked)."""

    __tablename__ = "entity_link"
    __table_args__ = (
        sa.Index("ix_entity_link_key", "kind", "link_key", "account_pk"),
        # "is this name named by someone other than a holder?" (bot.store.links._linking)
        sa.Index(
            "ix_entity_link_named", "kind", "link_key",
            postgresql_where=sa.text("origin <> 'holder'"), sqlite_where=sa.text("origin <> 'holder'"),
        ),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True)
    account_pk: int = Field(foreign_key="account.id", index=True)
    #: The call that named it; None for the account's own data.
    call_id: int | None = Field(default=None, foreign_key="call_attempt.id", index=True)
    entity_id: int | None = Field(default=None, foreign_key="extracted_entity.id")
    #: phone | card | id_number | person | employer
    kind: str = Field(max_length=12)
    #: holder (the account's own phone, ID, card, name) | counterparty (the flagged
    #: transaction's) | said (named by the callee)
    origin: str = Field(max_length=12)
    link_key: str = Field(max_length=100)
    shown: str = Field(max_length=100)
    #: The id of the link key that hashed a number (None for names): keys rotate with
    #: the PII key, and ``bot db link-entities --rebuild`` re-keys.
    key_id: str | None = Field(default=None, max_length=16)
    created_at: dt.datetime = Field(default_factory=utcnow)
