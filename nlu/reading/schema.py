"""The answer schema: what an investigator notes down while a callee answers.

Keyword hits say which words were used; a :class:`Reading` says what the answer *means*
for the question asked. Every answer fills the same small schema, whatever its topic
(a custody answer may mention where money came from, a fund answer may admit lending
the card):

- ``acts``: what the utterance does in the conversation, several at once ("是我，你哪位？"
  is ``confirm`` + ``ask_who``);
- ``holder``: who has the card / phone banking now;
- ``custody``: what happened to the card, account or credentials, *affirmed* (a negated
  or hypothetical event is not listed);
- ``funds``: what the money is, where it came from or went;
- ``counterparty``: how well the holder knows the other side of the money.

The values are the labels of the training data (``nlu/reading/corpus/*.jsonl``) and the
label names of the trained model, so they are part of a file format: add values, never
rename them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Act(StrEnum):
    CONFIRM = "confirm"
    DENY = "deny"
    THIRD_PARTY = "third_party"
    WRONG_NUMBER = "wrong_number"
    ANNOUNCEMENT = "announcement"
    ASK_WHO = "ask_who"
    ASK_REPEAT = "ask_repeat"
    HARD_OF_HEARING = "hard_of_hearing"
    DOUBT_CALLER = "doubt_caller"
    WANT_HUMAN = "want_human"
    BUSY = "busy"
    REFUSE = "refuse"
    DONT_KNOW = "dont_know"
    HOSTILE = "hostile"
    GREETING = "greeting"
    ANSWER = "answer"


class Holder(StrEnum):
    SELF = "self"
    FAMILY = "family"
    OTHER = "other"
    UNKNOWN = "unknown"


class CustodyEvent(StrEnum):
    LENT = "lent"
    RENTED = "rented"
    SOLD = "sold"
    CREDENTIALS_SHARED = "credentials_shared"
    LOST = "lost"


class Funds(StrEnum):
    SALARY = "salary"
    BUSINESS = "business"
    FAMILY = "family"
    ASSET_SALE = "asset_sale"
    RENT = "rent"
    LOAN = "loan"
    PENSION = "pension"
    SAVINGS = "savings"
    REIMBURSEMENT = "reimbursement"
    SPENDING = "spending"
    GAMBLING = "gambling"
    FOR_OTHERS = "for_others"
    TASK_REBATE = "task_rebate"
    STRANGER_INVESTMENT = "stranger_investment"
    SCAM_PAYMENT = "scam_payment"
    CRYPTO_OTC = "crypto_otc"
    UNEXPLAINED = "unexplained"


class Counterparty(StrEnum):
    NAMED = "named"
    KNOWN_UNNAMED = "known_unnamed"
    STRANGER = "stranger"
    UNKNOWN = "unknown"


#: Schema fields, the enum of their values, and whether several values may hold at once.
FIELDS: dict[str, tuple[type[StrEnum], bool]] = {
    "acts": (Act, True),
    "holder": (Holder, False),
    "custody": (CustodyEvent, True),
    "funds": (Funds, True),
    "counterparty": (Counterparty, False),
}

#: Custody events that hand the account to someone else (an admission, band high).
HANDED_OVER = frozenset(
    {CustodyEvent.LENT, CustodyEvent.RENTED, CustodyEvent.SOLD, CustodyEvent.CREDENTIALS_SHARED}
)
#: Uses of money that make a coherent legitimate story.
LEGIT_FUNDS = frozenset(
    {
        Funds.SALARY,
        Funds.BUSINESS,
        Funds.FAMILY,
        Funds.ASSET_SALE,
        Funds.RENT,
        Funds.LOAN,
        Funds.PENSION,
        Funds.SAVINGS,
        Funds.REIMBURSEMENT,
        Funds.SPENDING,
    }
)


def label_key(field_name: str, value: str) -> str:
    """The flat name of one schema value (``custody=lent``): a model output, a feature
    condition in the rule set, a column of the evaluation."""
    return f"{field_name}={value}"


#: Every flat label, in a fixed order (the model's output order).
ALL_LABELS: tuple[str, ...] = tuple(
    label_key(name, member.value) for name, (enum, _) in FIELDS.items() for member in enum
)


@dataclass(frozen=True, slots=True)
class Slot:
    """One schema value the answer holds, how sure the reader is, and the words that
    carried it (for the call detail and the score's explanation)."""

    label: str
    confidence: float
    words: tuple[str, ...] = ()
    source: str = "model"


@dataclass(frozen=True, slots=True)
class Reading:
    """What one answer means: the schema values it holds (see the module docstring)."""

    slots: tuple[Slot, ...] = field(default_factory=tuple)
    model_version: str = ""

    def has(self, label: str) -> bool:
        return any(s.label == label for s in self.slots)

    def slot(self, label: str) -> Slot | None:
        return next((s for s in self.slots if s.label == label), None)

    def values(self, field_name: str) -> list[str]:
        prefix = field_name + "="
        return [s.label[len(prefix) :] for s in self.slots if s.label.startswith(prefix)]

    @property
    def acts(self) -> frozenset[Act]:
        return frozenset(Act(v) for v in self.values("acts"))

    @property
    def holder(self) -> Holder | None:
        found = self.values("holder")
        return Holder(found[0]) if found else None

    @property
    def custody(self) -> frozenset[CustodyEvent]:
        return frozenset(CustodyEvent(v) for v in self.values("custody"))

    @property
    def funds(self) -> frozenset[Funds]:
        return frozenset(Funds(v) for v in self.values("funds"))

    @property
    def counterparty(self) -> Counterparty | None:
        found = self.values("counterparty")
        return Counterparty(found[0]) if found else None

    def labels(self) -> list[str]:
        return [s.label for s in self.slots]
