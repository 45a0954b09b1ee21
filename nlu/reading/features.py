"""Features of one answer for the reading model: character n-grams that know about
negation, hearsay and the question asked.

A bag of character n-grams generalises across wordings far better than keyword lists
(it needs no segmentation, survives ASR homophones in part, and learns dialect words
from data), but on its own it cannot tell "借给朋友了" from "从来没借给朋友": the same
n-grams occur in both. So every n-gram that starts inside a negation scope or a hearsay
clause (:mod:`nlu.negation`) is emitted with a marker instead — ``~借给`` is a different
feature from ``借给`` and the model learns what each means. Short n-grams are also
emitted conjoined with the topic of the question (``identity#是``: a bare 是 means
something at the identity gate and little elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable

from nlu.negation import hearsay_spans, negation_spans

#: n-gram orders over characters.
MIN_N, MAX_N = 1, 3
#: n-grams up to this order are also emitted with the topic prefix.
TOPIC_N = 2
NEGATED = "~"
HEARSAY = "^"
#: What names become before the model sees them: the holder's own name, anyone else's.
#: A model that learnt "我是李建国" would know one person; one that learnt "我是Ⓗ"
#: knows every holder who says their name, and "Ⓗ？不认识" every stranger who repeats it.
HOLDER_MARK = "Ⓗ"
PERSON_MARK = "Ⓟ"
#: Characters that only separate clauses; kept as one boundary symbol.
_BOUNDARY = set("，。！？；：、,.!?;: …~～\"'“”‘’()（）")


def _marks(text: str) -> list[str]:
    marks = [""] * len(text)
    for start, end in hearsay_spans(text):
        for i in range(start, end):
            marks[i] = HEARSAY
    for start, end in negation_spans(text):
        for i in range(start, end):
            marks[i] = NEGATED
    return marks


def mask_names(text: str, holder: Iterable[str] = (), others: Iterable[str] = ()) -> str:
    """``text`` with the holder's name(s) as :data:`HOLDER_MARK` and other people's as
    :data:`PERSON_MARK`, longest first (so 李建国 is masked before 李建)."""
    marks = {name: HOLDER_MARK for name in holder if len(name) >= 2}
    marks.update({n: PERSON_MARK for n in others if len(n) >= 2 and n not in marks})
    for name in sorted(marks, key=len, reverse=True):
        text = text.replace(name, marks[name])
    return text


def grams(text: str) -> list[tuple[str, str, int]]:
    """``(marker, n-gram, start)`` of the normalised ``text``; clause boundaries become
    ``|`` and the answer is framed by ``<`` and ``>`` (so "是" alone differs from a 是
    inside a sentence)."""
    chars = ["|" if c in _BOUNDARY else c for c in text]
    marks = _marks(text)
    # Collapse runs of boundaries so "好的。。" and "好的" share their n-grams.
    seq: list[tuple[str, str, int]] = [("", "<", -1)]
    for i, (c, m) in enumerate(zip(chars, marks, strict=True)):
        if c == "|" and seq[-1][1] == "|":
            continue
        seq.append((m, c, i))
    if seq[-1][1] == "|":
        seq.pop()
    seq.append(("", ">", len(text)))
    out: list[tuple[str, str, int]] = []
    for n in range(MIN_N, MAX_N + 1):
        for i in range(len(seq) - n + 1):
            window = seq[i : i + n]
            gram = "".join(c for _, c, _ in window)
            if gram in ("<", ">", "|"):
                continue
            out.append((window[0][0], gram, window[0][2]))
    return out


def features(topic: str, text: str) -> list[str]:
    """The feature strings of one answer (what the vectoriser counts)."""
    out = [f"@{topic}"]
    for mark, gram, _ in grams(text):
        feature = mark + gram
        out.append(feature)
        if len(gram) <= TOPIC_N:
            out.append(f"{topic}#{feature}")
    return out


def document(topic: str, text: str) -> str:
    """Topic and text packed into the one string a scikit-learn analyzer receives."""
    return f"{topic}\t{text}"


def analyze_document(doc: str) -> list[str]:
    """The analyzer given to the vectoriser: unpacks :func:`document`."""
    topic, _, text = doc.partition("\t")
    return features(topic, text)


def surface(feature: str) -> str:
    """The words a feature stands for, for explanations: topic prefix, markers and
    frame symbols removed (``card_custody#~借`` -> ``借``)."""
    if feature.startswith("@"):
        return ""  # the topic itself, not words
    gram = feature.partition("#")[2] or feature
    return gram.lstrip(NEGATED + HEARSAY).strip("<>|").replace("|", " ")
