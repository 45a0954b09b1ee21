"""Presentation helpers for calls: masking for display, entity highlighting of a turn's
text, and the rows of a score's explanation.

Everything here is pure (no database, no request) so the page, the API and the CSV
export show personal data the same way: masked unless ``reveal`` is true, which only a
``reveal_pii`` route with a reason and an audit event may pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from pydantic import BaseModel

from bot.core.masking import mask_card, mask_id, mask_phone, mask_text
from bot.core.vocab import SENSITIVE_LABELS
from bot.store.models import AccountRow, EntityRow

_MASKERS = {"id_number": mask_id, "card_number": mask_card, "phone": mask_phone}


def shown(text: str | None, reveal: bool = False) -> str:
    """Free text as it may be shown: every card, phone and ID number masked."""
    if text is None:
        return ""
    return text if reveal else mask_text(text)


def mask_sensitive(label: str, text: str) -> str:
    """A sensitive entity's text masked by its label's rule.

    Spoken numbers may carry no Arabic digits (``一三八...``), which the digit-based maskers
    leave alone: then everything but the last four characters is starred.
    """
    masker = _MASKERS.get(label, mask_text)
    masked = masker(text)
    if masked == text and len(text) > 4:
        return "*" * (len(text) - 4) + text[-4:]
    return masked


def phone(account: AccountRow, reveal: bool = False) -> str:
    number = account.phone_e164 or account.phone
    return number if reveal else mask_phone(number)


def id_number(account: AccountRow, reveal: bool = False) -> str:
    if not account.id_number:
        return ""
    return account.id_number if reveal else mask_id(account.id_number)


def account_id(value: str, reveal: bool = False) -> str:
    """The bank's account identifier: often the card number itself, so masked like one."""
    return value if reveal else mask_text(value)


# -- transcript -------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A piece of a turn's text; ``label`` is set for an extracted entity."""

    text: str
    label: str | None = None
    value: str = ""
    negated: bool = False


def _non_overlapping(entities: Iterable[EntityRow], length: int) -> list[EntityRow]:
    """Entities inside the text, outer ones first; a nested or overlapping one is dropped
    (it is still listed in the entity table)."""
    ordered = sorted(
        (e for e in entities if 0 <= e.start < e.end <= length), key=lambda e: (e.start, -e.end)
    )
    kept: list[EntityRow] = []
    cursor = 0
    for e in ordered:
        if e.start >= cursor:
            kept.append(e)
            cursor = e.end
    return kept


def spans(text: str, entities: Iterable[EntityRow], reveal: bool = False) -> list[Span]:
    """Split ``text`` at its entities (offsets into the stored text), each piece masked.

    Masking works piece by piece because a masked number may not keep its length, which
    would shift every later offset.
    """
    out: list[Span] = []
    cursor = 0
    for e in _non_overlapping(entities, len(text)):
        if e.start > cursor:
            out.append(Span(shown(text[cursor : e.start], reveal)))
        piece, value = text[e.start : e.end], e.value
        if not reveal:
            if e.label in SENSITIVE_LABELS:
                piece, value = mask_sensitive(e.label, piece), mask_sensitive(e.label, value)
            else:
                piece, value = mask_text(piece), mask_text(value)
        out.append(Span(piece, e.label, value, e.negated))
        cursor = e.end
    if cursor < len(text):
        out.append(Span(shown(text[cursor:], reveal)))
    return out


def highlight(pieces: Sequence[Span]) -> Markup:
    """HTML for a turn: entities in ``<mark>`` (negated ones with class ``neg``), escaped."""
    html = []
    for s in pieces:
        if s.label is None:
            html.append(escape(s.text))
            continue
        cls = "ent neg" if s.negated else "ent"
        title = f"{s.label}: {s.value}" + (" (negated)" if s.negated else "")
        html.append(
            Markup('<mark class="{}" data-label="{}" title="{}">{}</mark>').format(
                cls, s.label, title, s.text
            )
        )
    return Markup("").join(html)


def entity_value(entity: EntityRow, reveal: bool = False) -> str:
    if reveal:
        return entity.value
    if entity.label in SENSITIVE_LABELS:
        return mask_sensitive(entity.label, entity.value)
    return mask_text(entity.value)


# -- explanation ------------------------------------------------------------------------


class Evidence(BaseModel):
    """The callee's words that fired a rule (masked) and what in them matched."""

    topic: str
    node_id: str
    answer: str
    match: str


class ExplanationRow(BaseModel):
    """A fired rule of a score's explanation, as the pages and the API show it."""

    feature: str
    description: str
    category: str
    weight: float
    hits: int
    contribution: float
    evidence: list[Evidence]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def explanation_rows(
    explanation: Iterable[dict[str, Any]], reveal: bool = False
) -> list[ExplanationRow]:
    """Each fired rule of a stored explanation, largest contribution first, with the
    callee's words that fired it (masked)."""
    rows = [
        ExplanationRow(
            feature=str(h.get("feature", "")),
            description=shown(str(h.get("description", "")), reveal),
            category=str(h.get("category", "")),
            weight=_number(h.get("weight")),
            hits=int(_number(h.get("hits"))),
            contribution=_number(h.get("contribution")),
            evidence=[
                Evidence(
                    topic=str(ev.get("topic", "")),
                    node_id=str(ev.get("node_id", "")),
                    answer=shown(str(ev.get("answer", "")), reveal),
                    match=shown(str(ev.get("match", "")), reveal),
                )
                for ev in h.get("evidence") or []
                if isinstance(ev, dict)
            ],
        )
        for h in explanation
        if isinstance(h, dict)
    ]
    return sorted(rows, key=lambda r: abs(r.contribution), reverse=True)
