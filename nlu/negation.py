"""Negation scope for Chinese answers.

A negator (不, 没有, 从来没有, 并没有, 未, 别 ...) opens a scope that runs from the end
of the negator to the end of its clause. A clause ends at punctuation (，。！？；、:) or
at a clause-opening conjunction (但是, 不过, 而是, 只是 ...). After the contrastive
negator 不是, a later 是 in the same clause starts the positive half
("不是借的是卖的": 卖 is asserted).

Words such as 不知道, 不认识, 不记得, 没办法, 别人, 有没有 contain a negator character but
open no scope: "我不认识王强" still mentions 王强 as a real person. All word lists live
in ``nlu/data/negation.yaml``. Matching is longest-first at each position, so 别人 is
lexical while 别 alone is a negator.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from nlu.data import load_yaml

Span = tuple[int, int]


class _Kind(Enum):
    NEGATOR = "negator"
    CONTRASTIVE = "contrastive"
    LEXICAL = "lexical"
    BOUNDARY = "boundary"


@dataclass(frozen=True, slots=True)
class _Cue:
    word: str
    kind: _Kind


class NegationScanner:
    """Finds negation scopes; built from the lists in ``negation.yaml``."""

    def __init__(self, data_dir: Path | None = None) -> None:
        data: dict[str, Any] = load_yaml("negation.yaml", data_dir)
        self._boundary_chars = frozenset(data["boundary_chars"])
        contrastive = set(data.get("contrastive_negators", ()))
        cues: list[_Cue] = [_Cue(w, _Kind.BOUNDARY) for w in data["boundary_words"]]
        cues += [_Cue(w, _Kind.LEXICAL) for w in data["lexical"]]
        cues += [
            _Cue(w, _Kind.CONTRASTIVE if w in contrastive else _Kind.NEGATOR)
            for w in data["negators"]
        ]
        self._cues: dict[str, list[_Cue]] = {}
        for cue in cues:  # the first kind listed wins for a word listed twice
            bucket = self._cues.setdefault(cue.word[0], [])
            if all(c.word != cue.word for c in bucket):
                bucket.append(cue)
        for bucket in self._cues.values():
            bucket.sort(key=lambda c: -len(c.word))

    def _cue_at(self, text: str, i: int) -> _Cue | None:
        for cue in self._cues.get(text[i], ()):
            if text.startswith(cue.word, i):
                return cue
        return None

    def spans(self, text: str) -> list[Span]:
        """Character spans ``(start, end)`` of the negated parts of ``text``."""
        spans: list[Span] = []
        scope_start: int | None = None
        contrastive = False
        i = 0
        while i < len(text):
            cue = None if text[i] in self._boundary_chars else self._cue_at(text, i)
            closes = text[i] in self._boundary_chars or (
                cue is not None and cue.kind is _Kind.BOUNDARY
            )
            if contrastive and cue is None and text[i] == "是":
                closes = True
            if closes:
                if scope_start is not None and i > scope_start:
                    spans.append((scope_start, i))
                scope_start, contrastive = None, False
            elif cue is not None and cue.kind in (_Kind.NEGATOR, _Kind.CONTRASTIVE):
                if scope_start is None:
                    scope_start = i + len(cue.word)
                contrastive = contrastive or cue.kind is _Kind.CONTRASTIVE
            i += len(cue.word) if cue is not None else 1
        if scope_start is not None and len(text) > scope_start:
            spans.append((scope_start, len(text)))
        return spans


def in_spans(spans: Iterable[Span], start: int, end: int) -> bool:
    """True when the item ``[start, end)`` begins inside one of ``spans``.

    An item that starts before the scope (e.g. 没有工作, which contains its own negator)
    is not negated.
    """
    return any(s <= start < e and end > start for s, e in spans)


_default: NegationScanner | None = None


def default_scanner() -> NegationScanner:
    """The scanner built from the packaged data, created on first use."""
    global _default
    if _default is None:
        _default = NegationScanner()
    return _default


def negation_spans(text: str) -> list[Span]:
    """Negated character spans of ``text`` (normalised text expected)."""
    return default_scanner().spans(text)


def is_negated(text: str, start: int, end: int, spans: Sequence[Span] | None = None) -> bool:
    """Whether ``text[start:end]`` lies in a negation scope (pass ``spans`` to reuse them)."""
    return in_spans(negation_spans(text) if spans is None else spans, start, end)


_HEARSAY = re.compile(r"(听说|据说|听别人说|听人说|听人讲|新闻上说|新闻里说)[^，。！？；,.!?;]*")


def hearsay_spans(text: str) -> list[Span]:
    """Clauses that report what others do ("我听说有人卖卡"): a risk word there is not the
    callee's own behaviour. "有人说…我就去办了" is not hearsay: the callee acted on it."""
    return [m.span() for m in _HEARSAY.finditer(text)]
