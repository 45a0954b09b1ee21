"""One investigation end to end, without I/O: route -> dialogue -> score -> disposition.

:class:`Investigator` holds everything that is loaded once per process (scripts, rule
set, policy, NLU) and investigates any number of accounts. The same object serves the
text simulation, the evaluation, the benchmark and (through a pipecat processor) real
calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.core.account import Account
from bot.core.dialogue import Analyzer, BotUtterance, CalleeEvent, DialogueManager, DialogueRecord
from bot.core.policy import Decision, Policy
from bot.core.routing import Router
from bot.core.scoring import RiskAssessment, RiskScorer
from bot.core.scripts import TemplateLibrary
from bot.core.vocab import EntityLabel, Outcome

Callee = Callable[[BotUtterance], CalleeEvent]


@dataclass(frozen=True)
class CallResult:
    account: Account
    record: DialogueRecord
    assessment: RiskAssessment
    decision: Decision

    @property
    def entities(self) -> dict[str, list[str]]:
        """Non-negated entity values from every callee turn, by label, in order, unique."""
        out: dict[str, list[str]] = {}
        for turn in self.record.turns:
            if turn.nlu is None:
                continue
            for ent in turn.nlu.entities:
                if ent.negated:
                    continue
                values = out.setdefault(ent.label.value, [])
                if ent.value not in values:
                    values.append(ent.value)
        return out

    @property
    def nlu_version(self) -> str:
        """The version of the reading model that read this call's answers ("" if none)."""
        return next(
            (
                t.nlu.reading.model_version
                for t in self.record.turns
                if t.nlu is not None and t.nlu.reading.model_version
            ),
            "",
        )

    def entity_texts(self, label: EntityLabel) -> set[str]:
        return {
            e.text
            for t in self.record.turns
            if t.nlu is not None
            for e in t.nlu.entities
            if e.label == label and not e.negated
        }


@dataclass
class DialogueLimits:
    max_turns: int = 30
    max_seconds: float = 420.0
    refusals_to_end: int = 3


class Investigator:
    def __init__(
        self,
        library: TemplateLibrary,
        router: Router,
        scorer: RiskScorer,
        policy: Policy,
        analyzer: Analyzer,
        *,
        bank_name: str,
        bank_hotline: str = "",
        limits: DialogueLimits | None = None,
    ) -> None:
        self.library = library
        self.router = router
        self.scorer = scorer
        self.policy = policy
        self.analyzer = analyzer
        self.bank_name = bank_name
        self.bank_hotline = bank_hotline
        self.limits = limits or DialogueLimits()

    def dialogue(self, account: Account, script_id: str | None = None) -> DialogueManager:
        """A fresh dialogue for ``account`` with the routed (or the given) script."""
        script = self.library.scripts[script_id or self.router.script_id(account)]
        return DialogueManager(
            script,
            account,
            self.analyzer,
            self.library.language(script.language),
            bank_name=self.bank_name,
            max_turns=self.limits.max_turns,
            max_seconds=self.limits.max_seconds,
            refusals_to_end=self.limits.refusals_to_end,
            bank_hotline=self.bank_hotline,
        )

    def conclude(
        self,
        account: Account,
        record: DialogueRecord,
        *,
        attempts_left: bool = True,
        call_key: str = "",
    ) -> CallResult:
        """Score a finished dialogue and decide the disposition."""
        if record.outcome is None:
            raise ValueError("conclude() needs a finished dialogue")
        assessment = self.scorer.score(record, account)
        decision = self.policy.decide(
            record.outcome,
            assessment.band,
            severe=assessment.severe,
            attempts_left=attempts_left,
            branch=account.branch,
            call_key=call_key or account.account_id,
            handoff=record.handoff_requested,
            contact_invalid=record.announcement is not None and record.announcement.contact_invalid,
        )
        return CallResult(account, record, assessment, decision)

    def unreached(
        self, account: Account, outcome: Outcome, ended_by: str, *, attempts_left: bool
    ) -> CallResult:
        """The result of a call that never reached a dialogue (no answer, busy, failure)."""
        script = self.library.scripts[self.router.script_id(account)]
        record = DialogueRecord(script.ref, script.digest, outcome=outcome, ended_by=ended_by)
        return self.conclude(account, record, attempts_left=attempts_left)

    def run_text(
        self, account: Account, callee: Callee, *, attempts_left: bool = True
    ) -> CallResult:
        """A whole call in text: ``callee`` answers each bot utterance."""
        dm = self.dialogue(account)
        utterance: BotUtterance | None = dm.start()
        while not dm.done:
            assert utterance is not None
            utterance = dm.handle(callee(utterance))
        return self.conclude(account, dm.record, attempts_left=attempts_left)
