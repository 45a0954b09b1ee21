"""Disposition policy: outcome + risk band -> what the bank does, and whether a person
reviews it. The default table is the one in the design brief; compliance can override
any row per branch in a YAML file (``BOT_POLICY_FILE``)::

    version: 2
    branches:
      shenzhen:
        medium: {disposition: suspend_non_counter, review: always}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.core.vocab import Disposition, Outcome, RiskBand

Review = Literal["always", "never", "sample"]
#: Situations of the policy table (rows).
Situation = Literal[
    "unreached_retry",  # voicemail / no answer / busy / failed, attempts left
    "unreached_exhausted",  # the same, attempts exhausted
    "wrong_person",
    "refused",
    "low",
    "medium",
    "high",
    "high_severe",  # high and the card was sold/rented or credentials handed over
    "no_band",  # completed or hung up without enough answers for a band
    "handoff",  # the holder asked for a person and the call gave no band: a person calls
    "contact_invalid",  # a carrier said the number is unknown or suspended
]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disposition: Disposition
    review: Review


DEFAULT_TABLE: dict[Situation, Rule] = {
    "unreached_retry": Rule(disposition=Disposition.RETRY_CALL, review="never"),
    "unreached_exhausted": Rule(disposition=Disposition.MANUAL_INVESTIGATION, review="never"),
    "wrong_person": Rule(disposition=Disposition.MANUAL_INVESTIGATION, review="always"),
    "refused": Rule(disposition=Disposition.LIMIT_NON_COUNTER, review="always"),
    "low": Rule(disposition=Disposition.CLEAR, review="sample"),
    "medium": Rule(disposition=Disposition.LIMIT_NON_COUNTER, review="always"),
    "high": Rule(disposition=Disposition.SUSPEND_NON_COUNTER, review="always"),
    "high_severe": Rule(disposition=Disposition.SUSPEND_ALL, review="always"),
    "no_band": Rule(disposition=Disposition.RETRY_CALL, review="never"),
    "handoff": Rule(disposition=Disposition.MANUAL_INVESTIGATION, review="always"),
    # calling a 空号 again helps no one: the bank's contact data needs a person
    "contact_invalid": Rule(disposition=Disposition.MANUAL_INVESTIGATION, review="never"),
}


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    default: dict[Situation, Rule] = Field(default_factory=dict)
    branches: dict[str, dict[Situation, Rule]] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    disposition: Disposition
    needs_review: bool
    situation: Situation
    #: True when review was chosen by the random sample (not by the rule itself).
    sampled: bool = False


_UNREACHED = frozenset({Outcome.VOICEMAIL, Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED})


class Policy:
    def __init__(
        self,
        overrides: PolicyFile | None = None,
        *,
        sample_rate: float = 0.05,
        sample_seed: str = "review-v1",
    ):
        self.overrides = overrides or PolicyFile(version=1)
        self.sample_rate = sample_rate
        self.sample_seed = sample_seed

    @classmethod
    def from_file(cls, path: Path | None, *, sample_rate: float, sample_seed: str) -> Policy:
        if path is None:
            return cls(sample_rate=sample_rate, sample_seed=sample_seed)
        from bot.core.scripts import parse_model

        table, _ = parse_model(path.read_text(encoding="utf-8"), str(path), PolicyFile)
        return cls(table, sample_rate=sample_rate, sample_seed=sample_seed)

    def rule(self, situation: Situation, branch: str | None) -> Rule:
        for table in (
            self.overrides.branches.get(branch or "", {}),
            self.overrides.default,
            DEFAULT_TABLE,
        ):
            if situation in table:
                return table[situation]
        raise KeyError(situation)  # pragma: no cover - DEFAULT_TABLE is complete

    @staticmethod
    def situation(
        outcome: Outcome, band: RiskBand | None, severe: bool, attempts_left: bool
    ) -> Situation:
        if outcome in _UNREACHED:
            return "unreached_retry" if attempts_left else "unreached_exhausted"
        if outcome is Outcome.WRONG_PERSON:
            return "wrong_person"
        if outcome is Outcome.REFUSED:
            return "refused"
        if band is None:
            return "no_band" if attempts_left else "unreached_exhausted"
        if band is RiskBand.HIGH:
            return "high_severe" if severe else "high"
        return band.value  # type: ignore[return-value]

    def in_sample(self, call_key: str) -> bool:
        """Deterministic per call: the same call is always in or out of the sample."""
        digest = hashlib.sha256(f"{self.sample_seed}:{call_key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.sample_rate

    def decide(
        self,
        outcome: Outcome,
        band: RiskBand | None,
        *,
        severe: bool = False,
        attempts_left: bool = True,
        branch: str | None = None,
        call_key: str = "",
        handoff: bool = False,
        contact_invalid: bool = False,
    ) -> Decision:
        """``handoff``: the holder asked for a person. A person then calls back: without a
        band that is the disposition; with one, the band's disposition stands and a
        reviewer always sees the call. ``contact_invalid``: a carrier announced the
        number unknown or suspended, whatever attempts are left."""
        situation = self.situation(outcome, band, severe, attempts_left)
        if contact_invalid and situation in ("unreached_retry", "unreached_exhausted"):
            situation = "contact_invalid"
        if handoff and situation in ("no_band", "unreached_retry", "unreached_exhausted"):
            situation = "handoff"
        rule = self.rule(situation, branch)
        if handoff and situation != "handoff":
            return Decision(rule.disposition, True, situation)
        if rule.review == "sample":
            sampled = self.in_sample(call_key)
            return Decision(rule.disposition, sampled, situation, sampled)
        return Decision(rule.disposition, rule.review == "always", situation)
