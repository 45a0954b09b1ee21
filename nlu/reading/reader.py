"""Reading an answer: the trained model, a few exact checks, and the dialogue intent.

The model (:mod:`nlu.reading.model`) generalises over wordings; what must be exact
stays a rule here, stated once:

- **What was handed over.** A custody event (lent, rented, sold) is about the card or
  the account. When the clause that says it names another object — a car, a flat, goods,
  a sum of money — and nothing of the account, the event is dropped ("车卖给邻居了" is a
  sale of a car, not of a card).
- **A close relative is family.** When the card or credentials went to someone and the
  only relationships named are close kin (儿子, 老婆, 我弟…), the holder is ``family``.
- **Credentials go to someone.** ``credentials_shared`` needs a handing-over cue said
  outside a negation (给, 告诉, 发过去, 他也知道, 共享…): "手机银行是我自己用的" and "验证码
  从来不给人" name credentials and hand nothing over.

The word lists are data (``nlu/data/custody_checks.yaml``).

:func:`resolve_intent` then settles the dialogue intent (what the script routes on)
from the intent classifier and the reading: a confirmation mixed with a question back,
a greeting or a hearing complaint is still a confirmation.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from bot.core.vocab import CUSTODY_INTENTS, EntityLabel, Intent, Purpose, Topic
from nlu.data import load_yaml
from nlu.negation import in_spans, negation_spans
from nlu.reading.features import mask_names
from nlu.reading.model import ReadingModel
from nlu.reading.schema import (
    HANDED_OVER,
    Act,
    CustodyEvent,
    Funds,
    Holder,
    Reading,
    Slot,
    label_key,
)
from nlu.types import Entity, IntentScore

#: Events whose object must be the card or account.
_OBJECT_LABELS = frozenset(
    label_key("custody", e.value)
    for e in (CustodyEvent.LENT, CustodyEvent.RENTED, CustodyEvent.SOLD)
)
_SHARED_LABEL = label_key("custody", CustodyEvent.CREDENTIALS_SHARED.value)
_HANDED_LABELS = frozenset(label_key("custody", e.value) for e in HANDED_OVER)
_FAMILY_LABEL = label_key("holder", Holder.FAMILY.value)
_CLAUSE = re.compile(r"[^，。！？；,.!?;]+")


@cache
def _checks() -> dict[str, tuple[str, ...]]:
    data: dict[str, Any] = load_yaml("custody_checks.yaml")
    return {key: tuple(str(w) for w in words) for key, words in data.items()}


def other_object_only(text: str) -> bool:
    """Every clause with a handing-over verb names another object and no account word."""
    checks = _checks()
    account_words, others, verbs = (
        checks["account_words"],
        checks["other_objects"],
        checks["verbs"],
    )
    if any(w in text for w in account_words):
        return False
    clauses = [c for c in _CLAUSE.findall(text) if any(v in c for v in verbs)]
    return bool(clauses) and all(any(o in c for o in others) for c in clauses)


def _close_family_only(entities: tuple[Entity, ...]) -> bool:
    kin = {e.value for e in entities if e.label is EntityLabel.RELATIONSHIP and not e.negated}
    return bool(kin) and kin <= set(_checks()["close_family"])


def handed_to_someone(text: str) -> bool:
    """A handing-over cue is said outside every negation scope."""
    spans = negation_spans(text)
    for cue in _checks()["handing_cues"]:
        start = text.find(cue)
        while start >= 0:
            if not in_spans(spans, start, start + len(cue)):
                return True
            start = text.find(cue, start + 1)
    return False


#: The ``purpose`` entity a use of money implies (the persona contract's vocabulary).
PURPOSE_OF: dict[str, Purpose] = {
    "salary": Purpose.SALARY,
    "reimbursement": Purpose.SALARY,
    "business": Purpose.BUSINESS,
    "for_others": Purpose.COLLECT_FOR_OTHERS,
    "task_rebate": Purpose.COLLECT_FOR_OTHERS,
    "loan": Purpose.LOAN_REPAYMENT,
    "savings": Purpose.SAVINGS_INVESTMENT,
    "stranger_investment": Purpose.SAVINGS_INVESTMENT,
    "spending": Purpose.DAILY_SPENDING,
    "rent": Purpose.OTHER,
    "gambling": Purpose.OTHER,
    "scam_payment": Purpose.OTHER,
    "crypto_otc": Purpose.OTHER,
}
PURPOSE_TOPICS = frozenset({Topic.CARD_PURPOSE, Topic.FUND_SOURCE})


def purpose_entities(
    reading: Reading, text: str, topic: str, entities: tuple[Entity, ...]
) -> tuple[Entity, ...]:
    """``purpose`` entities for the uses of money the reading found in an answer about
    money, placed on the words that carried them; keyword purposes already there stay."""
    if topic not in PURPOSE_TOPICS:
        return ()
    have = {e.value for e in entities if e.label is EntityLabel.PURPOSE}
    out: list[Entity] = []
    for slot in reading.slots:
        field_name, _, value = slot.label.partition("=")
        purpose = PURPOSE_OF.get(value) if field_name == "funds" else None
        if purpose is None or purpose.value in have:
            continue
        have.add(purpose.value)
        word = next((w for w in slot.words if w in text), "")
        start = text.find(word) if word else 0
        end = start + len(word) if word else len(text)
        out.append(Entity(EntityLabel.PURPOSE, text[start:end], purpose.value, start, end))
    return tuple(out)


class Reader:
    """The reading model plus the exact checks; build once per process and share."""

    def __init__(self, model: ReadingModel) -> None:
        self.model = model

    @classmethod
    def load(cls, model_dir: Path) -> Reader:
        return cls(ReadingModel.load(model_dir))

    @property
    def version(self) -> str:
        return self.model.version

    def read(
        self,
        text: str,
        topic: str,
        entities: tuple[Entity, ...] = (),
        holder_names: tuple[str, ...] = (),
    ) -> Reading:
        """``text`` normalised; ``entities`` extracted from it; ``holder_names``: how the
        holder's name may be written (the account's name first)."""
        if not text.strip():
            return Reading((), self.model.version)
        people = [e for e in entities if e.label is EntityLabel.PERSON]
        holder = [*holder_names, *(e.text for e in people if e.value in holder_names)]
        others = [e.text for e in people if e.value not in holder_names]
        reading = self.model.read(mask_names(text, holder, others), topic)
        slots = list(reading.slots)
        if any(s.label in _OBJECT_LABELS for s in slots) and other_object_only(text):
            slots = [s for s in slots if s.label not in _OBJECT_LABELS]
        if any(s.label == _SHARED_LABEL for s in slots) and not handed_to_someone(text):
            slots = [s for s in slots if s.label != _SHARED_LABEL]
        if any(s.label in _HANDED_LABELS for s in slots) and _close_family_only(entities):
            kin = [e.text for e in entities if e.label is EntityLabel.RELATIONSHIP]
            slots = [s for s in slots if not s.label.startswith("holder=")]
            slots.append(Slot(_FAMILY_LABEL, 1.0, tuple(kin), "rule: close relative"))
        return Reading(tuple(slots), reading.model_version)


def _confidence(reading: Reading, act: Act) -> float:
    slot = reading.slot(label_key("acts", act.value))
    return slot.confidence if slot is not None else 0.0


def _has(reading: Reading, act: Act, minimum: float = 0.5) -> bool:
    return _confidence(reading, act) >= minimum


#: Identity-gate decisions a rule makes that the reading never overturns.
_FINAL_RULES = frozenset({Intent.VOICEMAIL})


def _score(intent: Intent, reading: Reading, act: Act | str) -> IntentScore:
    label = act if isinstance(act, str) else label_key("acts", act.value)
    slot: Slot | None = reading.slot(label)
    return IntentScore(intent, slot.confidence if slot else 0.5, "reading")


def resolve_intent(intent: IntentScore, reading: Reading, topic: str) -> IntentScore:
    """The intent the script routes on, given the classifier's and the reading."""
    if not reading.slots or (intent.source == "rule" and intent.intent in _FINAL_RULES):
        return intent
    acts = reading.acts
    if topic == Topic.IDENTITY:
        return _identity_intent(intent, reading, acts)
    if topic == Topic.CARD_CUSTODY:
        custody = _custody_intent(reading)
        if custody is not None:
            return custody
        if intent.intent in CUSTODY_INTENTS:
            # A custody word the reading does not take as a custody fact ("车借给他了",
            # "没人知道我密码"): the answer informs, it admits nothing.
            return _score(Intent.INFORM, reading, Act.ANSWER)
    # "不讲" reads as refuse + funds=unexplained: money left unexplained is not an answer.
    substantive = Act.ANSWER in acts or reading.custody or reading.funds - {Funds.UNEXPLAINED}
    if Act.REFUSE in acts and not substantive:
        return _score(Intent.REFUSE, reading, Act.REFUSE)
    if intent.intent is Intent.BUSY_CALLBACK and substantive and Act.BUSY not in acts:
        # A story that mentions a meeting ("他说在开会不方便接电话") is not a callback request.
        return _score(Intent.INFORM, reading, Act.ANSWER)
    if intent.intent in (Intent.REFUSE, Intent.UNCLEAR, Intent.ASK_REPEAT) and substantive:
        # "不方便说…就是我哥给的生活费": the answer is there, whatever the opening words.
        return _score(Intent.INFORM, reading, Act.ANSWER)
    if acts and acts <= {Act.DONT_KNOW, Act.GREETING} and intent.intent is Intent.INFORM:
        return _score(Intent.UNCLEAR, reading, Act.DONT_KNOW)
    return intent


def _identity_intent(intent: IntentScore, reading: Reading, acts: frozenset[Act]) -> IntentScore:
    if (
        Act.ANNOUNCEMENT in acts
        and Act.CONFIRM not in acts
        and _has(reading, Act.ANNOUNCEMENT, 0.7)
    ):
        return _score(Intent.VOICEMAIL, reading, Act.ANNOUNCEMENT)
    someone_else = acts & {Act.THIRD_PARTY, Act.WRONG_NUMBER, Act.DENY}
    if someone_else and Act.CONFIRM in acts:
        # Both heard ("我是，有事？" can look like "我是他老婆"): the stronger reading wins.
        confirm = _confidence(reading, Act.CONFIRM)
        if confirm >= max(_confidence(reading, a) for a in someone_else):
            someone_else = frozenset()
        else:
            acts = acts - {Act.CONFIRM}
    if Act.CONFIRM in acts and not someone_else:
        # "是我，我开着车呢，你说吧" goes on; "是我，在开会，晚点打" is a callback.
        busier = _confidence(reading, Act.BUSY) > _confidence(reading, Act.CONFIRM)
        if intent.intent is Intent.BUSY_CALLBACK and busier:
            return intent
        return _score(Intent.AFFIRM, reading, Act.CONFIRM)
    if Act.THIRD_PARTY in acts:
        return _score(Intent.THIRD_PARTY, reading, Act.THIRD_PARTY)
    if Act.WRONG_NUMBER in acts:
        return _score(Intent.WRONG_NUMBER, reading, Act.WRONG_NUMBER)
    if Act.DENY in acts and Act.CONFIRM not in acts:
        return _score(Intent.DENY, reading, Act.DENY)
    if intent.intent is Intent.AFFIRM and acts & {Act.ASK_REPEAT, Act.HARD_OF_HEARING}:
        # "啊？你说啥？" — a rule read 啊/嗯 as yes, but the caller did not hear the name.
        return _score(Intent.ASK_REPEAT, reading, Act.ASK_REPEAT)
    return intent


def _custody_intent(reading: Reading) -> IntentScore | None:
    events = reading.custody
    if CustodyEvent.SOLD in events or CustodyEvent.RENTED in events:
        event = CustodyEvent.SOLD if CustodyEvent.SOLD in events else CustodyEvent.RENTED
        return _score(Intent.CUSTODY_SOLD, reading, label_key("custody", event.value))
    if CustodyEvent.LENT in events:
        return _score(Intent.CUSTODY_LENT, reading, label_key("custody", "lent"))
    if CustodyEvent.CREDENTIALS_SHARED in events:
        return _score(
            Intent.CREDENTIALS_SHARED, reading, label_key("custody", "credentials_shared")
        )
    holder = reading.holder
    if holder is Holder.FAMILY:
        return _score(Intent.CUSTODY_FAMILY, reading, label_key("holder", "family"))
    if holder is Holder.SELF:
        return _score(Intent.CUSTODY_SELF, reading, label_key("holder", "self"))
    return None
