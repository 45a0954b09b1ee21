"""Explainable risk scoring of a call's answers, driven by a versioned YAML rule set.

The score is a logistic combination of the bank's prior model score and the features
that fired in the answers. Every fired feature keeps its contribution and the words that
triggered it, so a reviewer sees *why* an account scored as it did.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.core.account import Account
from bot.core.dialogue import Answer, DialogueRecord
from bot.core.vocab import EntityLabel, Intent, Outcome, RiskBand
from nlu.negation import hearsay_spans, in_spans, negation_spans
from nlu.phonetic import KeyphraseMatcher
from nlu.reading.schema import (
    ALL_LABELS,
    HANDED_OVER,
    LEGIT_FUNDS,
    Act,
    Counterparty,
    Funds,
    Holder,
    Slot,
    label_key,
)

Category = Literal["hard", "soft", "legit"]
Counter = Literal["unclear_answers", "refusals", "no_inputs"]


class FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    category: Category
    weight: float
    per_hit: bool = False
    cap: int = Field(1, ge=1)
    min_band: RiskBand | None = None
    #: Fires ``suspend_all`` instead of ``suspend_non_counter`` in the default policy.
    severe: bool = False
    #: Only answers to these topics / these script nodes count (empty: all).
    topics: list[str] = Field(default_factory=list)
    nodes: list[str] = Field(default_factory=list)
    intents: list[Intent] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    pinyin_keywords: list[str] = Field(default_factory=list)
    entities: dict[EntityLabel, list[str]] = Field(default_factory=dict)
    #: Schema values of the answer's reading (``custody=lent``, ``funds=gambling``...).
    reading: list[str] = Field(default_factory=list)
    #: ...each of which must hold in the same answer too (``holder=family``).
    reading_with: list[str] = Field(default_factory=list)
    #: ...and none of which may hold in it.
    reading_unless: list[str] = Field(default_factory=list)
    #: The reading (or the intent, for ``intents``) must be at least this sure (a
    #: half-heard admission is doubt, not an admission: pair a hard feature with a soft
    #: one below this; a bare "嗯" is an affirm at 0.6).
    min_confidence: float = Field(0.0, ge=0, le=1)
    #: ...and below this (the soft twin of a hard feature).
    max_confidence: float = Field(1.0, ge=0, le=1)
    counter: Counter | None = None
    computed: str | None = None

    @model_validator(mode="after")
    def _has_condition(self) -> FeatureSpec:
        if not (
            self.intents
            or self.keywords
            or self.entities
            or self.reading
            or self.counter
            or self.computed
        ):
            raise ValueError(
                "a feature needs at least one of intents, keywords, entities, reading, "
                "counter, computed"
            )
        unknown = [
            r for r in self.reading + self.reading_with + self.reading_unless if r not in ALL_LABELS
        ]
        if unknown:
            raise ValueError(
                f"unknown reading value(s) {', '.join(unknown)} (known: field=value from "
                "nlu/reading/schema.py, e.g. custody=lent, funds=gambling, acts=refuse)"
            )
        return self


class Bands(BaseModel):
    model_config = ConfigDict(extra="forbid")

    medium: float = Field(ge=0, le=1)
    high: float = Field(ge=0, le=1)


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    language: str = "zh"
    prior_weight: float = 1.0
    bias: float = 0.0
    bands: Bands
    high_requires_hard: bool = True
    min_answers_for_band: int = Field(2, ge=0)
    features: dict[str, FeatureSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_computed(self) -> RuleSet:
        for fid, spec in self.features.items():
            if spec.computed and spec.computed not in COMPUTED:
                raise ValueError(
                    f"feature '{fid}': unknown computed check '{spec.computed}' (known: {', '.join(sorted(COMPUTED))})"
                )
        return self


def load_ruleset(path: Path) -> RuleSet:
    """Read and validate a rule set; raises ``SourceFileError`` with file and line."""
    from bot.core.scripts import parse_model

    ruleset, _ = parse_model(path.read_text(encoding="utf-8"), str(path), RuleSet)
    return ruleset


# -- explanation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    topic: str
    node_id: str
    #: The callee's words (normalised) that carried the signal.
    answer: str
    #: What matched inside them: a phrase, an intent, an entity, or a count.
    match: str


@dataclass(frozen=True, slots=True)
class FeatureHit:
    feature: str
    description: str
    category: Category
    weight: float
    hits: int
    contribution: float
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class RiskAssessment:
    score: float
    band: RiskBand | None
    prior: float
    prior_contribution: float
    logit: float
    hits: tuple[FeatureHit, ...]
    severe: bool
    ruleset_version: str
    #: Why the band is what it is, when a rule (not just the score) decided it.
    band_reason: str = ""
    notes: list[str] = field(default_factory=list)

    def fired(self) -> set[str]:
        return {h.feature for h in self.hits}


# -- computed checks --------------------------------------------------------------------

ComputedCheck = Callable[[DialogueRecord, Account, dict[str, list[Evidence]]], list[Evidence]]


def _custody_contradiction(
    record: DialogueRecord, account: Account, fired: dict[str, list[Evidence]]
) -> list[Evidence]:
    """Says the card is with them, and elsewhere that it was handed over."""
    kept = [
        _ev(a, "holder=self")
        for a in record.answers
        if a.nlu.reading.holder is Holder.SELF or a.nlu.intent.intent is Intent.CUSTODY_SELF
    ]
    handed = [
        _ev(a, ", ".join(sorted(e.value for e in a.nlu.reading.custody & HANDED_OVER)))
        for a in record.answers
        if _surely_handed(a)
    ]
    return kept[:1] + handed[:1] if kept and handed else []


def _surely_handed(answer: Answer) -> bool:
    """A handing-over the reading is sure of (as sure as the hard features need)."""
    return any(
        s.confidence >= SURE
        for e in answer.nlu.reading.custody & HANDED_OVER
        if (s := answer.nlu.reading.slot(label_key("custody", e.value))) is not None
    )


#: How sure a reading must be for a computed check to take it as said.
SURE = 0.65


def _family_flows_unexplained(
    record: DialogueRecord, account: Account, fired: dict[str, list[Evidence]]
) -> list[Evidence]:
    """A relative uses the card and the holder cannot say where its money comes from."""
    family = [a for a in record.answers if a.nlu.reading.holder is Holder.FAMILY]
    if not family:
        return []
    vague = [a for a in record.answers if a.topic in _MONEY_TOPICS and _cannot_explain(a)]
    return [_ev(family[0], "holder=family"), _ev(vague[0], "cannot explain")] if vague else []


def _large_unknown_counterparty(
    record: DialogueRecord, account: Account, fired: dict[str, list[Evidence]]
) -> list[Evidence]:
    """A large flagged transfer whose other side the holder cannot name."""
    if account.txn is None or account.txn.amount < LARGE_AMOUNT:
        return []
    money = [a for a in record.answers if a.topic in _MONEY_TOPICS]
    if any(a.nlu.reading.counterparty in _KNOWN for a in money):
        return []
    if any(a.nlu.reading.funds & _SALES for a in money):
        return []  # a buyer or a customer: a seller rarely knows their name
    unknown = [
        a
        for a in money
        if a.nlu.reading.counterparty in (Counterparty.UNKNOWN, Counterparty.STRANGER)
        or (a.topic == "counterparty" and _cannot_explain(a))
    ]
    return [_ev(unknown[0], f"{account.txn.amount:g}, counterparty unknown")] if unknown else []


def _counterparty_disowned(
    record: DialogueRecord, account: Account, fired: dict[str, list[Evidence]]
) -> list[Evidence]:
    """The holder hears the name the bank has for the other side and does not know it
    ("温晓燕？不是啊，这人我不认识")."""
    name = account.txn.counterparty if account.txn else None
    if not name:
        return []
    for a in record.answers:
        if a.topic not in _MONEY_TOPICS or name not in a.nlu.values(EntityLabel.PERSON):
            continue
        reading = a.nlu.reading
        # A stranger is not enough: a seller rarely knows a buyer's name.
        if reading.acts & {Act.DENY, Act.DONT_KNOW} or reading.counterparty is Counterparty.UNKNOWN:
            return [_ev(a, f"{name}: not known")]
    return []


def _earnings_without_work(
    record: DialogueRecord, account: Account, fired: dict[str, list[Evidence]]
) -> list[Evidence]:
    """Says the money is wages or takings, and that they have no job."""
    earned = [
        a
        for a in record.answers
        if a.topic in _MONEY_TOPICS
        and (a.nlu.reading.funds & _EARNINGS or set(a.nlu.values(EntityLabel.PURPOSE)) & {"salary"})
    ]
    jobless = [
        a
        for a in record.answers
        if a.topic == "occupation" and _JOBLESS in a.nlu.values(EntityLabel.OCCUPATION)
    ]
    return [_ev(earned[0], "earnings"), _ev(jobless[0], _JOBLESS)] if earned and jobless else []


_EARNINGS = frozenset({Funds.SALARY, Funds.BUSINESS, Funds.REIMBURSEMENT})
#: The occupation value of "没工作", "待业"... (``nlu/data/occupations.yaml``).
_JOBLESS = "无业"
#: A flagged transfer at least this large needs a counterparty the holder can name.
LARGE_AMOUNT = 10_000
_MONEY_TOPICS = frozenset({"fund_source", "counterparty", "card_purpose"})
_SALES = frozenset({Funds.ASSET_SALE, Funds.BUSINESS})
_KNOWN = frozenset({Counterparty.NAMED, Counterparty.KNOWN_UNNAMED})


def _cannot_explain(answer: Answer) -> bool:
    reading = answer.nlu.reading
    if reading.funds & LEGIT_FUNDS or reading.counterparty in _KNOWN:
        return False
    return (
        Funds.UNEXPLAINED in reading.funds
        or Act.DONT_KNOW in reading.acts
        or Act.REFUSE in reading.acts
        or answer.nlu.intent.intent in (Intent.UNCLEAR, Intent.REFUSE)
    )


def _amount_mismatch(
    record: DialogueRecord, account: Account, fired: dict[str, list[Evidence]]
) -> list[Evidence]:
    if account.txn is None or account.txn.amount <= 0:
        return []
    target = account.txn.amount
    for a in record.answers:
        if a.topic != "fund_source":
            continue
        amounts = [float(v) for v in a.nlu.values(EntityLabel.AMOUNT) if _is_number(v)]
        if amounts and all(abs(x - target) / target > 0.5 for x in amounts):
            return [_ev(a, f"{amounts[0]:g} vs {target:g}")]
    return []


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


COMPUTED: dict[str, ComputedCheck] = {
    "custody_contradiction": _custody_contradiction,
    "amount_mismatch": _amount_mismatch,
    "family_flows_unexplained": _family_flows_unexplained,
    "large_unknown_counterparty": _large_unknown_counterparty,
    "earnings_without_work": _earnings_without_work,
    "counterparty_disowned": _counterparty_disowned,
}


def _sure_enough(spec: FeatureSpec, confidence: float) -> bool:
    return spec.min_confidence <= confidence < spec.max_confidence + 1e-9


def _reading_slot(spec: FeatureSpec, answer: Answer) -> Slot | None:
    """The slot of ``answer``'s reading that fires ``spec``, if any."""
    reading = answer.nlu.reading
    slot = next(
        (
            found
            for r in spec.reading
            if (found := reading.slot(r)) is not None and _sure_enough(spec, found.confidence)
        ),
        None,
    )
    if slot is None:
        return None
    if not all(reading.has(r) for r in spec.reading_with):
        return None
    if any(reading.has(r) for r in spec.reading_unless):
        return None
    return slot


def _applies(spec: FeatureSpec, answer: Answer) -> bool:
    return (not spec.topics or answer.topic in spec.topics) and (
        not spec.nodes or answer.node_id in spec.nodes
    )


def _ev(answer: Answer, match: str) -> Evidence:
    return Evidence(answer.topic, answer.node_id, answer.nlu.text, match)


# -- the scorer -------------------------------------------------------------------------


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class RiskScorer:
    """Scores dialogue records with one rule set (build once, reuse for every call)."""

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self._chars = KeyphraseMatcher(
            {fid: f.keywords for fid, f in ruleset.features.items()}, pinyin=False
        )
        self._sound = KeyphraseMatcher(
            {
                fid: [k for k in f.keywords if len(k) >= 3] + f.pinyin_keywords
                for fid, f in ruleset.features.items()
            },
            pinyin=True,
        )

    def _keyword_hits(self, answers: Iterable[Answer]) -> dict[str, list[Evidence]]:
        out: dict[str, list[Evidence]] = {}
        for a in answers:
            text = a.nlu.text
            spans = negation_spans(text) + hearsay_spans(text)
            seen: set[str] = set()
            for m in [*self._chars.find_all(text), *self._sound.find_all(text)]:
                spec = self.ruleset.features[m.key]
                if m.key in seen or not _applies(spec, a):
                    continue
                if in_spans(spans, m.start, m.end):
                    continue
                seen.add(m.key)
                said = text[m.start : m.end]
                out.setdefault(m.key, []).append(
                    _ev(a, said if said == m.phrase else f"{said}≈{m.phrase}")
                )
        return out

    def _condition_hits(self, fid: str, spec: FeatureSpec, answers: list[Answer]) -> list[Evidence]:
        out: list[Evidence] = []
        for a in answers:
            if not _applies(spec, a):
                continue
            if a.nlu.intent.intent in spec.intents and _sure_enough(spec, a.nlu.intent.confidence):
                out.append(
                    _ev(a, f"intent {a.nlu.intent.intent.value} ({a.nlu.intent.confidence:.2f})")
                )
                continue
            slot = _reading_slot(spec, a)
            if slot is not None:
                words = "、".join(slot.words)
                out.append(
                    _ev(
                        a, f"{slot.label} ({slot.confidence:.2f})" + (f": {words}" if words else "")
                    )
                )
                continue
            for label, values in spec.entities.items():
                found = [v for v in a.nlu.values(label) if v in values]
                if found:
                    out.append(_ev(a, f"{label.value}={found[0]}"))
                    break
        return out

    @staticmethod
    def _counter(record: DialogueRecord, counter: Counter) -> int:
        if counter == "unclear_answers":
            return sum(1 for a in record.answers if a.nlu.intent.intent is Intent.UNCLEAR)
        if counter == "refusals":
            return record.refusals
        return record.no_inputs

    def score(self, record: DialogueRecord, account: Account) -> RiskAssessment:
        rs = self.ruleset
        answers = record.answers
        keyword = self._keyword_hits(answers)
        fired: dict[str, list[Evidence]] = {}
        counts: dict[str, int] = {}
        for fid, spec in rs.features.items():
            if spec.computed or spec.counter:
                continue
            evidence = self._condition_hits(fid, spec, answers) + keyword.get(fid, [])
            if evidence:
                fired[fid] = evidence
                # The same words on one topic count once (a follow-up that gets the same
                # answer again is not a second doubt).
                counts[fid] = len({(e.topic, e.answer) for e in evidence})
        for fid, spec in rs.features.items():
            if spec.counter:
                n = self._counter(record, spec.counter)
                if n:
                    fired[fid] = [Evidence("", "", "", f"{spec.counter}={n}")]
                    counts[fid] = n
            elif spec.computed:
                evidence = COMPUTED[spec.computed](record, account, fired)
                if evidence:
                    fired[fid] = evidence
                    counts[fid] = 1
        hits = []
        for fid, evidence in fired.items():
            spec = rs.features[fid]
            n = min(counts[fid], spec.cap) if spec.per_hit else 1
            hits.append(
                FeatureHit(
                    fid,
                    spec.description,
                    spec.category,
                    spec.weight,
                    n,
                    spec.weight * n,
                    tuple(evidence),
                )
            )
        hits.sort(key=lambda h: -abs(h.contribution))
        prior_part = rs.prior_weight * _logit(account.model_score)
        logit = prior_part + rs.bias + sum(h.contribution for h in hits)
        score = 1 / (1 + math.exp(-logit))
        band, reason = self._band(score, hits, record)
        return RiskAssessment(
            score=round(score, 4),
            band=band,
            prior=account.model_score,
            prior_contribution=round(prior_part, 4),
            logit=round(logit, 4),
            hits=tuple(hits),
            severe=any(rs.features[h.feature].severe for h in hits),
            ruleset_version=rs.version,
            band_reason=reason,
        )

    def _band(
        self, score: float, hits: list[FeatureHit], record: DialogueRecord
    ) -> tuple[RiskBand | None, str]:
        rs = self.ruleset
        substantive = sum(1 for a in record.answers if a.nlu.intent.intent is not Intent.REFUSE)
        if record.outcome not in (Outcome.COMPLETED, Outcome.HUNG_UP, None):
            return None, f"no band for outcome {record.outcome}"
        if substantive < rs.min_answers_for_band:
            return None, f"only {substantive} answers (need {rs.min_answers_for_band})"
        band = (
            RiskBand.HIGH
            if score >= rs.bands.high
            else RiskBand.MEDIUM
            if score >= rs.bands.medium
            else RiskBand.LOW
        )
        hard = [h for h in hits if h.category == "hard"]
        forced = [h.feature for h in hard if rs.features[h.feature].min_band is RiskBand.HIGH]
        if forced and band is not RiskBand.HIGH:
            return RiskBand.HIGH, f"{', '.join(forced)} forces band high"
        if band is RiskBand.HIGH and rs.high_requires_hard and not hard:
            return (
                RiskBand.MEDIUM,
                "high score without an admitted risk behaviour: capped at medium",
            )
        doubt = [h.feature for h in hits if rs.features[h.feature].min_band is RiskBand.MEDIUM]
        if doubt and band is RiskBand.LOW:
            # A doubt the rest of the story does not explain (a salary card does not say
            # who sent a large transfer) keeps the account for a person to look at.
            return RiskBand.MEDIUM, f"{', '.join(doubt)} keeps band at least medium"
        return band, ""
