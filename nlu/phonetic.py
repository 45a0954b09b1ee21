"""Key-phrase matching that tolerates ASR homophone errors.

Whisper writes what it hears, so 刷单 may come out as 刷丹 and 验证码 as 验正码. A
:class:`KeyphraseMatcher` matches phrases on their characters and, for phrases of two
characters or more, on toneless pinyin as well.

How it stays fast (a few hundred phrases, ~30-character utterances):

* phrase syllables are computed once at construction, phrase-aware (银行 -> yin hang);
* the text side reads each character with its default reading plus the common second
  readings listed in ``nlu/data/polyphones.yaml`` (cached per character), so 银行 in
  the text still reads yin hang; pypinyin's full heteronym lists are not used, they
  carry archaic readings (是 ti, 完 kuan) that cause false matches;
* phrases of >= 2 characters are indexed by their first two units (syllables, or
  characters when pinyin is off), so each text position costs a couple of dict lookups;
  one-character phrases are matched on characters only (homophones of a single
  syllable are far too common to be evidence).

False positives are kept down two ways: a pinyin match must share at least
``min_same_chars`` characters with its phrase (ASR slips usually change one character
of a word: 跑芬, 验正码), and :meth:`KeyphraseMatcher.find` places character matches
first, so a pinyin match across a word boundary (月工资 read as 月供) loses to the
real word it overlaps (工资).

Offsets are character offsets into the text given to :meth:`KeyphraseMatcher.find`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from typing import Literal

from pypinyin import Style, lazy_pinyin, pinyin

from nlu.data import load_yaml

MatchVia = Literal["char", "pinyin"]

# Optional fuzzy folding for southern-accented Mandarin: retroflex initials and the
# front/back nasal finals are merged (zhi=zi, shen=sheng). Off by default.
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


def fold_syllable(syllable: str) -> str:
    """Merge zh/z, ch/c, sh/s, ang/an, eng/en, ing/in (used when ``fuzzy=True``)."""
    for long, short in _FUZZY_INITIALS:
        if syllable.startswith(long):
            syllable = short + syllable[len(long) :]
            break
    for long, short in _FUZZY_FINALS:
        if syllable.endswith(long):
            return syllable[: -len(long)] + short
    return syllable


def _is_han(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


@lru_cache(maxsize=1)
def _polyphones() -> dict[str, list[str]]:
    data: dict[str, list[str]] = load_yaml("polyphones.yaml")
    return data


@lru_cache(maxsize=16384)
def char_readings(char: str, fuzzy: bool = False) -> frozenset[str]:
    """Toneless readings of one character: its default reading plus the common second
    readings of ``polyphones.yaml``; a non-Han character reads as itself (lower-cased)."""
    if not _is_han(char):
        return frozenset((char.lower(),))
    readings = pinyin(char, style=Style.NORMAL, heteronym=False, errors="ignore")
    found = {r for group in readings for r in group} | set(_polyphones().get(char, ()))
    found = found or {char}
    if fuzzy:
        found = {fold_syllable(r) for r in found}
    return frozenset(found)


def phrase_syllables(phrase: str, fuzzy: bool = False) -> tuple[str, ...]:
    """One toneless syllable per character of ``phrase``; runs of Han characters are
    read phrase-aware (银行 -> yin hang), other characters read as themselves."""
    syllables: list[str] = []
    for is_han, run in groupby(phrase, key=_is_han):
        chars = "".join(run)
        syllables += lazy_pinyin(chars) if is_han else [c.lower() for c in chars]
    if len(syllables) != len(phrase):  # defensive: keep the per-character alignment
        syllables = [lazy_pinyin(c)[0] if _is_han(c) else c.lower() for c in phrase]
    if fuzzy:
        syllables = [fold_syllable(s) for s in syllables]
    return tuple(syllables)


@dataclass(frozen=True, slots=True)
class PhraseMatch:
    """One match: ``text[start:end]`` matched ``phrase`` of ``key`` (via characters or pinyin)."""

    key: str
    phrase: str
    start: int
    end: int
    via: MatchVia


@dataclass(frozen=True, slots=True)
class _Entry:
    key: str
    phrase: str
    syllables: tuple[str, ...]


class KeyphraseMatcher:
    """Find phrases of several keys in a text, on characters and optionally on pinyin.

    ``phrases`` maps a key (e.g. a purpose value) to its phrases. A phrase listed under
    several keys matches for each of them.
    """

    def __init__(
        self,
        phrases: Mapping[str, Iterable[str]],
        *,
        pinyin: bool = True,
        fuzzy: bool = False,
        min_same_chars: int = 1,
    ) -> None:
        self.pinyin = pinyin
        self.fuzzy = fuzzy
        self.min_same_chars = min_same_chars
        self._single: dict[str, list[_Entry]] = {}
        self._multi: dict[tuple[str, str], list[_Entry]] = {}
        seen: set[tuple[str, str]] = set()
        for key, key_phrases in phrases.items():
            for phrase in key_phrases:
                if phrase and (key, phrase) not in seen:
                    seen.add((key, phrase))
                    self._add(key, phrase)
        for bucket in (*self._single.values(), *self._multi.values()):
            bucket.sort(key=lambda e: -len(e.phrase))

    def _add(self, key: str, phrase: str) -> None:
        if len(phrase) == 1:
            self._single.setdefault(phrase, []).append(_Entry(key, phrase, (phrase,)))
            return
        units = phrase_syllables(phrase, self.fuzzy) if self.pinyin else tuple(phrase)
        self._multi.setdefault((units[0], units[1]), []).append(_Entry(key, phrase, units))

    def __len__(self) -> int:
        return sum(len(b) for b in self._single.values()) + sum(
            len(b) for b in self._multi.values()
        )

    def find_all(self, text: str) -> list[PhraseMatch]:
        """Every match, overlapping ones included, sorted by start then longest first."""
        units = self._text_units(text)
        found: list[PhraseMatch] = []
        for i, char in enumerate(text):
            for entry in self._single.get(char, ()):
                found.append(PhraseMatch(entry.key, entry.phrase, i, i + 1, "char"))
            if i + 1 < len(text):
                self._match_multi(text, units, i, found)
        found.sort(key=lambda m: (m.start, m.start - m.end, m.via != "char"))
        return found

    def find(self, text: str) -> list[PhraseMatch]:
        """Non-overlapping matches, sorted by start.

        Character matches are placed first (leftmost, then longest), pinyin matches
        then fill the gaps the same way. Matches of different keys on exactly the same
        span are all kept.
        """
        every = self.find_all(text)
        chosen: list[PhraseMatch] = []
        for via in ("char", "pinyin"):
            for m in every:
                if m.via != via:
                    continue
                same_span = [c for c in chosen if (c.start, c.end) == (m.start, m.end)]
                if same_span:
                    if via == "char" and all(c.key != m.key for c in same_span):
                        chosen.append(m)
                elif all(m.end <= c.start or m.start >= c.end for c in chosen):
                    chosen.append(m)
        return sorted(chosen, key=lambda m: (m.start, m.end))

    def _text_units(self, text: str) -> Sequence[frozenset[str]]:
        if not self.pinyin:
            return ()
        return [char_readings(c, self.fuzzy) for c in text]

    def _match_multi(
        self,
        text: str,
        units: Sequence[frozenset[str]],
        i: int,
        found: list[PhraseMatch],
    ) -> None:
        if not self.pinyin:
            for entry in self._multi.get((text[i], text[i + 1]), ()):
                if text.startswith(entry.phrase, i):
                    found.append(
                        PhraseMatch(entry.key, entry.phrase, i, i + len(entry.phrase), "char")
                    )
            return
        n = len(text)
        for first in units[i]:
            for second in units[i + 1]:
                for entry in self._multi.get((first, second), ()):
                    end = i + len(entry.syllables)
                    if end > n or not all(
                        s in units[i + k] for k, s in enumerate(entry.syllables[2:], 2)
                    ):
                        continue
                    same = sum(a == b for a, b in zip(text[i:end], entry.phrase, strict=True))
                    if same == len(entry.phrase):
                        found.append(PhraseMatch(entry.key, entry.phrase, i, end, "char"))
                    elif same >= self.min_same_chars:
                        found.append(PhraseMatch(entry.key, entry.phrase, i, end, "pinyin"))


def sounds_like(text: str, name: str, *, within: bool = False, slips: int | None = None) -> bool:
    """``text`` (or, with ``within``, some run of it as long as ``name``) reads like
    ``name`` on toneless pinyin with southern-accent folding: every syllable the same
    but ``slips`` (default: one in a name of three or more characters, none in a shorter
    one: 章为 ~ 张伟, 曹秀迎 ~ 曹秀英; 李明 is not 李娜). Any common reading counts."""
    target = phrase_syllables(name, fuzzy=True)
    n = len(target)
    if n < 2:
        return False
    allowed = (1 if n >= 3 else 0) if slips is None else slips
    starts = range(len(text) - n + 1) if within else range(1 if len(text) == n else 0)
    for i in starts:
        window = text[i : i + n]
        if not all(_is_han(c) for c in window):
            continue
        misses = sum(s not in char_readings(c, True) for c, s in zip(window, target, strict=True))
        if misses <= allowed:
            return True
    return False
