"""Speech helpers shared by evaluation and the voice path."""

from __future__ import annotations

import re

import jiwer

from nlu.normalize import normalize

_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)


def comparable(text: str) -> str:
    """Traditional folded to Simplified, width folded, punctuation and spaces removed:
    what the persona contract compares when it measures a character error rate."""
    return _NOT_TEXT.sub("", normalize(text))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` (contract rules)."""
    ref, hyp = comparable(reference), comparable(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.cer(ref, hyp))
