"""Result types of the NLU layer. Plain frozen dataclasses: cheap, hashable, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.vocab import EntityLabel, Intent
from nlu.reading.schema import Reading


@dataclass(frozen=True, slots=True)
class Entity:
    """One extracted entity.

    ``text`` is the surface form in the normalised utterance, ``value`` the normalised
    value (Arabic digits for amounts, a :class:`~bot.core.vocab.Purpose` value for
    purposes, the canonical kinship term for relationships...). ``negated`` is true when
    the entity sits inside a negation scope ("我没有把卡借给朋友": 朋友 is negated).
    """

    label: EntityLabel
    text: str
    value: str
    start: int
    end: int
    negated: bool = False


@dataclass(frozen=True, slots=True)
class IntentScore:
    intent: Intent
    confidence: float
    source: str  # "rule" or "model"


@dataclass(frozen=True, slots=True)
class NluContext:
    """What the NLU may know about the call besides the utterance itself."""

    topic: str = "default"
    #: Names the bank already knows for this account (holder, counterparty...).
    known_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NluResult:
    raw_text: str
    #: Simplified, full-width folded text the rest works on (numerals are normalised
    #: only inside entity values, never rewritten in the text).
    text: str
    intent: IntentScore
    entities: tuple[Entity, ...] = field(default_factory=tuple)
    #: What the answer means under the schema (:mod:`nlu.reading.schema`).
    reading: Reading = field(default_factory=Reading)

    def values(self, label: EntityLabel, *, include_negated: bool = False) -> list[str]:
        return [
            e.value
            for e in self.entities
            if e.label == label and (include_negated or not e.negated)
        ]
