"""Storing a finished call: one transaction for everything it produced.

The call's record, turns, entities, risk assessment, disposition, the outbox entry that
tells the bank, the review item and the work item's next state are written together,
guarded by the claim's lease: if the lease was lost (the item was recovered and given
to another worker), nothing is written and :class:`LeaseLost` is raised, so an account
never ends twice.

Card, ID and phone numbers in what the callee said (turn text, entities, the score's
evidence) are masked before they are written; with a key configured their originals are
sealed in ``pii_secret`` in the same transaction (:mod:`bot.store.pii`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import metrics
from bot.campaign.queue import Claim, update_if_owned
from bot.campaign.schedule import CallingWindow, next_attempt_at
from bot.core.account import Account, Transaction
from bot.core.investigation import CallResult
from bot.core.masking import mask_entity, mask_tracked
from bot.core.scoring import RiskAssessment
from bot.core.vocab import Disposition, Scenario
from bot.store.db import session_scope
from bot.store.links import record_call_links
from bot.store.models import (
    AccountRow,
    CallRow,
    CampaignRow,
    DispositionRow,
    EntityRow,
    ReviewItemRow,
    RiskAssessmentRow,
    TurnRow,
    utcnow,
)
from bot.store.pii import Redactor
from bot.store.pii_crypto import KeyRing, process_keyring


class LeaseLost(RuntimeError):
    """The claim expired and was recovered elsewhere; this worker's result is void."""


def to_account(row: AccountRow) -> Account:
    """The dialogue's view of a stored account."""
    txn = None
    if row.txn_amount is not None:
        txn = Transaction(
            amount=row.txn_amount, date=row.txn_date, counterparty=row.txn_counterparty
        )
    return Account(
        account_id=row.account_id,
        name=row.name,
        phone=row.phone_e164,
        card_last4=row.card_last4,
        scenario=Scenario(row.scenario),
        model_score=row.model_score,
        branch=row.branch,
        gender="M" if row.gender == "M" else "F" if row.gender == "F" else None,
        txn=txn,
    )


def account_fields(account: Account) -> dict[str, Any]:
    """The stored columns of ``account`` (the inverse of :func:`to_account`), for
    benchmarks, tests and tools that write accounts without an import file."""
    txn = account.txn
    return {
        "account_id": account.account_id,
        "name": account.name,
        "phone": account.phone,
        "phone_e164": account.phone,
        "card_last4": account.card_last4,
        "scenario": account.scenario.value,
        "model_score": account.model_score,
        "branch": account.branch,
        "gender": account.gender,
        "txn_amount": txn.amount if txn else None,
        "txn_date": txn.date if txn else None,
        "txn_counterparty": txn.counterparty if txn else None,
    }


def explanation_json(assessment: RiskAssessment) -> list[dict[str, Any]]:
    return [
        {
            **{k: v for k, v in dataclasses.asdict(h).items() if k != "evidence"},
            "evidence": [dataclasses.asdict(e) for e in h.evidence],
        }
        for h in assessment.hits
    ]


def _turn_rows(
    call_id: int, result: CallResult, latency_ms: Mapping[int, float], redactor: Redactor
) -> tuple[list[TurnRow], list[EntityRow]]:
    """The call's turns and entities, masked; entity offsets point into the masked text."""
    turns, entities = [], []
    for idx, t in enumerate(result.record.turns):
        nlu = t.nlu
        text = mask_tracked(t.text)
        turn = TurnRow(
            call_id=call_id,
            idx=idx,
            role=t.role,
            at_s=t.at,
            node_id=t.node_id,
            topic=t.topic,
            text=text.text,
            event=t.event,
            intent=nlu.intent.intent.value if nlu else None,
            intent_confidence=nlu.intent.confidence if nlu else None,
            intent_source=nlu.intent.source if nlu else None,
            decision=t.decision,
            latency_ms=latency_ms.get(idx),
            reading=nlu.reading.labels() if nlu else [],
        )
        if text.changed:
            redactor.keep(turn, "text", t.text)
        redactor.protect(turn, "decision")
        turns.append(turn)
        for e in nlu.entities if nlu else ():
            entity = EntityRow(
                call_id=call_id,
                turn_idx=idx,
                label=e.label.value,
                value=e.value,
                text=e.text,
                start=text.position(e.start),
                end=text.position(e.end, end=True),
                negated=e.negated,
            )
            redactor.protect(entity, "value", "text", masker=partial(mask_entity, e.label))
            for column, original in (("start", e.start), ("end", e.end)):
                if getattr(entity, column) != original:
                    redactor.keep(entity, column, original)
            entities.append(entity)
    return turns, entities


def _finish_item(
    session: Session,
    claim: Claim,
    result: CallResult,
    campaign: CampaignRow,
    tz: str,
    now: dt.datetime,
) -> None:
    decision = result.decision
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "last_outcome": result.record.outcome.value if result.record.outcome else None,
        "updated_at": now,
    }
    if decision.disposition is Disposition.RETRY_CALL:
        window = CallingWindow.from_campaign(
            campaign.window_start, campaign.window_end, campaign.weekdays, campaign.holidays
        )
        values.update(
            state="queued",
            next_attempt_at=next_attempt_at(
                now, claim.attempt_no, campaign.backoff_minutes, window, tz
            ),
        )
    else:
        values.update(state="done", final_disposition=decision.disposition.value)
    if not update_if_owned(session, claim, **values):
        raise LeaseLost(f"work item {claim.item_id}: lease lost before the result was stored")


def record_result(
    engine: Engine,
    claim: Claim,
    result: CallResult,
    *,
    duration_s: float,
    now: dt.datetime | None = None,
    recording_path: str | None = None,
    turn_latency_ms: Mapping[int, float] | None = None,
    error: str | None = None,
    keys: KeyRing | None = None,
) -> int:
    """Store ``result`` for ``claim``; returns the disposition row id. Voice calls also
    give each answering bot turn's latency (by turn index) and a line error, if any.
    ``keys`` seal the unmasked numbers (default: the process settings' key, if any)."""
    from bot.delivery.payload import enqueue

    now = now or utcnow()
    record, assessment, decision = result.record, result.assessment, result.decision
    script_id, _, version = record.script_ref.partition("@v")
    redactor = Redactor(keys if keys is not None else process_keyring(), claim.call_id)
    with session_scope(engine) as session:
        call = session.get(CallRow, claim.call_id)
        campaign = session.get(CampaignRow, claim.campaign_id)
        account = session.get(AccountRow, claim.account_pk)
        if call is None or campaign is None or account is None:
            raise LeaseLost(f"work item {claim.item_id}: its call, campaign or account vanished")
        _finish_item(session, claim, result, campaign, account.timezone, now)
        call.ended_at = now
        call.duration_s = duration_s
        call.outcome = record.outcome.value if record.outcome else None
        call.ended_by = record.ended_by
        call.script_id, call.script_version, call.script_digest = (
            script_id,
            int(version or 0),
            record.script_digest,
        )
        call.ruleset_version = assessment.ruleset_version
        call.nlu_version = result.nlu_version or None
        call.risk_score = assessment.score
        call.risk_band = assessment.band.value if assessment.band else None
        call.disposition = decision.disposition.value
        call.needs_review = decision.needs_review
        call.identity_confirmed = record.identity_confirmed
        call.recording_path = recording_path
        latencies = dict(turn_latency_ms or {})
        if latencies:
            values = sorted(latencies.values())
            call.latency_p50_ms = float(np.percentile(values, 50))
            call.latency_p95_ms = float(np.percentile(values, 95))
        if error:
            call.error = error
            redactor.protect(call, "error")
        session.add(call)
        turns, entities = _turn_rows(claim.call_id, result, latencies, redactor)
        risk = RiskAssessmentRow(
            call_id=claim.call_id,
            score=assessment.score,
            band=call.risk_band,
            prior=assessment.prior,
            prior_contribution=assessment.prior_contribution,
            logit=assessment.logit,
            severe=assessment.severe,
            ruleset_version=assessment.ruleset_version,
            band_reason=assessment.band_reason,
            explanation=explanation_json(assessment),
        )
        redactor.protect(risk, "band_reason", "explanation")
        session.add_all([*turns, *entities, risk])
        disposition = DispositionRow(
            call_id=claim.call_id,
            account_pk=claim.account_pk,
            disposition=decision.disposition.value,
            situation=decision.situation,
            needs_review=decision.needs_review,
            sampled=decision.sampled,
            created_at=now,
        )
        session.add(disposition)
        session.flush()
        redactor.seal(session)
        record_call_links(session, account, claim.call_id, result, entities)
        if decision.disposition is not Disposition.RETRY_CALL:
            enqueue(session, disposition, call, account)
        if decision.needs_review:
            session.add(
                ReviewItemRow(
                    call_id=claim.call_id,
                    reason="sample" if decision.sampled else "suspicious",
                    created_at=now,
                )
            )
        assert disposition.id is not None
        disposition_id, counted = disposition.id, metrics.call_labels(call, campaign, account)
    metrics.call_recorded(counted)  # committed: count it
    return disposition_id
