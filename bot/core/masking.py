"""PII patterns and masking shared by logs, the review UI, exports and the NLU.

Masking rules (chosen so a reviewer can still tell two numbers apart, never enough to
reuse one):

* bank card: every digit but the last 4 becomes ``*``, separators are kept
  (``6225 8801 0000 0001`` -> ``**** **** **** 0001``);
* phone: country code kept, then the first 3 and last 4 digits of the national number
  (``+8613800000001`` -> ``+86 138****0001``; landline ``020-12345678`` -> ``020****5678``);
* PRC resident ID (18 characters, trailing X allowed): first and last character kept
  (``44010619900101123X`` -> ``4****************X``). The middle holds the region and the
  birth date, which are personal data on their own.

Card numbers are 16-19 digits in groups of four, or 13-19 digits written without
separators (older Visa, Diners and Amex lengths too; Amex's 4-6-5 grouping included).

The patterns are module constants so the entity extractor finds exactly what masking
masks. They expect Arabic digits (the NLU normalises full-width digits first) and
allow spaces or dashes between digit groups, as ASR and people write them.

Numbers read out digit by digit and transcribed in Chinese numerals ("幺三八零零…",
often mixed with Arabic digits) are masked too: a run of seven or more such digits is
read as Arabic digits and masked as the number it is (phone, card, ID), or, if it is
none of them, all but its last four digits are hidden. Amounts with units (四万九千八)
are not digit runs and stay readable.

Log records are masked whole, tracebacks included (:class:`PiiMaskingFilter`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

_SEP = r"[ \-]?"

#: 18-character PRC resident ID, optionally grouped 6-8-4; birth date sanity-checked.
ID_NUMBER_PATTERN: Final = (
    r"(?<![0-9A-Za-z])[1-9]\d{5}" + _SEP + r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12]\d|3[01])" + _SEP + r"\d{3}[0-9Xx](?![0-9A-Za-z])"
)
#: Bank card: 16-19 digits in groups of 4 separated by a space or dash, 14-15 digits
#: grouped 4-6-4(5), or 13-19 digits in one run (not a mobile number with its 86 prefix).
CARD_NUMBER_PATTERN: Final = (
    r"(?<![0-9A-Za-z])(?:(?:\d{4}" + _SEP + r"){3}\d{4}(?:" + _SEP + r"\d{1,3})?"
    r"|\d{4}[ \-]\d{6}[ \-]\d{4,5}"
    r"|(?!(?:00)?861[3-9]\d{9}(?![0-9A-Za-z]))\d{13,19})(?![0-9A-Za-z])"
)
#: Mainland mobile (optional +86/0086/86 prefix, 3-4-4 grouping) or landline 0XX(X)-XXXXXXX(X).
PHONE_PATTERN: Final = (
    r"(?<![0-9A-Za-z+])(?:(?:\+|00)?86"
    + _SEP
    + r")?1[3-9]\d"
    + _SEP
    + r"\d{4}"
    + _SEP
    + r"\d{4}(?![0-9A-Za-z])"
    r"|(?<![0-9A-Za-z])0\d{2,3}[ \-]?\d{7,8}(?![0-9A-Za-z])"
)

ID_NUMBER_RE: Final = re.compile(ID_NUMBER_PATTERN)
CARD_NUMBER_RE: Final = re.compile(CARD_NUMBER_PATTERN)
PHONE_RE: Final = re.compile(PHONE_PATTERN)
#: One pass over free text; at a given position an ID beats a card beats a phone.
PII_RE: Final = re.compile(
    rf"(?P<id_number>{ID_NUMBER_PATTERN})|(?P<card_number>{CARD_NUMBER_PATTERN})"
    rf"|(?P<phone>{PHONE_PATTERN})"
)

_COUNTRY_CODE = re.compile(r"^(?:\+|00)?86(?=1[3-9]\d{9}$)")


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit() or c in "Xx")


def _mask_positions(s: str, keep_first: int, keep_last: int) -> str:
    """Replace the digits (and X) of ``s`` by ``*`` except the first/last few; keep the rest."""
    total = len(_digits(s))
    out: list[str] = []
    seen = 0
    for c in s:
        if c.isdigit() or c in "Xx":
            out.append(c if seen < keep_first or seen >= total - keep_last else "*")
            seen += 1
        else:
            out.append(c)
    return "".join(out)


def mask_card(s: str) -> str:
    """Mask a card number, keeping only its last 4 digits and its separators."""
    return _mask_positions(s, 0, 4)


def mask_id(s: str) -> str:
    """Mask a resident ID, keeping its first and last character."""
    return _mask_positions(s, 1, 1)


def mask_phone(s: str) -> str:
    """Mask a phone number: country code, first 3 and last 4 national digits stay.
    A number masked already is returned as it is (masking twice changes nothing)."""
    if "*" in s and not PII_RE.search(s):
        return s
    digits = _digits(s).upper()
    lead = "+" if s.strip().startswith("+") else ""
    prefix = ""
    country = _COUNTRY_CODE.match(lead + digits)
    if country:
        prefix = "+86 "
        digits = digits[len(country.group(0)) - len(lead) :]
    if len(digits) < 8:
        return prefix + "*" * max(len(digits) - 2, 0) + digits[-2:]
    return prefix + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


_MASKERS = {"id_number": mask_id, "card_number": mask_card, "phone": mask_phone}


#: Digits as a transcript may spell them when a number is read out digit by digit.
SPOKEN_DIGITS: Final = {
    "零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3",
    "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}  # fmt: skip
_DIGIT_CHAR = "[0-9" + "".join(SPOKEN_DIGITS) + "]"
#: Seven or more digits, Chinese or mixed with Arabic, optionally spaced or dashed (an
#: ID number's trailing X included).
_SPOKEN_RUN_RE: Final = re.compile(rf"{_DIGIT_CHAR}(?:[ \-]?{_DIGIT_CHAR}){{6,}}[Xx]?")


#: One replaced stretch of a masking pass: (start, end) in its input, (start, end) in
#: its output.
Edit = tuple[int, int, int, int]


def _sub(
    regex: re.Pattern[str], replace: Callable[[re.Match[str]], str], text: str
) -> tuple[str, tuple[Edit, ...]]:
    """``regex.sub(replace, text)`` that also tells where each replacement went."""
    out: list[str] = []
    edits: list[Edit] = []
    cursor = length = 0
    for m in regex.finditer(text):
        new = replace(m)
        if new == m.group(0):
            continue
        out.append(text[cursor : m.start()])
        length += m.start() - cursor
        out.append(new)
        edits.append((m.start(), m.end(), length, length + len(new)))
        length += len(new)
        cursor = m.end()
    if not edits:
        return text, ()
    out.append(text[cursor:])
    return "".join(out), tuple(edits)


def _moved(edits: tuple[Edit, ...], index: int, end: bool) -> int:
    delta = 0
    for old_start, old_end, new_start, new_end in edits:
        if index <= old_start:
            break
        if index < old_end:  # inside a masked number: to its edge
            return new_end if end else new_start
        delta = new_end - old_end
    return index + delta


@dataclass(frozen=True, slots=True)
class MaskedText:
    """Masked text, and where the input's offsets went (a masked number need not keep
    its length: ``+8613800000001`` -> ``+86 138****0001``)."""

    text: str
    passes: tuple[tuple[Edit, ...], ...] = ()

    def position(self, index: int, *, end: bool = False) -> int:
        """Where offset ``index`` of the unmasked text is in :attr:`text`. An offset
        inside a masked number moves to that number's start (``end``: to its end), so an
        entity's ``(start, end)`` still covers its masked form."""
        for edits in self.passes:
            index = _moved(edits, index, end)
        return index

    @property
    def changed(self) -> bool:
        return any(self.passes)


def _mask_match(m: re.Match[str]) -> str:
    kind = m.lastgroup or "card_number"
    return _MASKERS[kind](m.group(0))


def _mask_arabic(text: str) -> str:
    return _sub(PII_RE, _mask_match, text)[0]


def _mask_spoken(m: re.Match[str]) -> str:
    run = m.group(0)
    if not any(c in SPOKEN_DIGITS for c in run):
        return run  # Arabic digits only: the patterns decide
    digits = "".join(SPOKEN_DIGITS.get(c, c) for c in run if c not in " -")
    masked = _mask_arabic(digits)
    if masked != digits:
        return masked
    return _mask_positions(digits, 0, 4)


def mask_tracked(text: str) -> MaskedText:
    """:func:`mask_text`, with the offset mapping (for entity spans stored masked)."""
    spoken, first = _sub(_SPOKEN_RUN_RE, _mask_spoken, text)
    masked, second = _sub(PII_RE, _mask_match, spoken)
    return MaskedText(masked, (first, second))


def mask_text(text: str) -> str:
    """Mask every card, phone and ID number found in free text, in Arabic digits or
    read out in Chinese numerals."""
    return mask_tracked(text).text


def mask_entity(label: str, text: str) -> str:
    """An entity's text or value masked: as free text (:func:`mask_text`), and for a
    sensitive label (``card_number``, ``phone``, ``id_number``) that no pattern
    recognises (a spoken form, a short number) everything but the last four characters
    starred, unless it is masked already (holds ``*``)."""
    masked = mask_text(text)
    if masked != text or label not in _MASKERS or len(text) <= 4 or "*" in text:
        return masked
    return "*" * (len(text) - 4) + text[-4:]


def mask_data(value: Any) -> Any:
    """A JSON value with every string in it masked (keys are left as they are)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    return value


_TRACEBACKS = logging.Formatter()


class PiiMaskingFilter(logging.Filter):
    """Logging filter that masks PII in every record: its message, its traceback and
    its stack.

    The record's arguments are merged into the message first (``getMessage``) so a
    number passed as ``%s`` argument is masked too; ``args`` is then cleared. The
    traceback is formatted here and kept, masked, in ``exc_text``, which formatters use
    instead of formatting ``exc_info`` again (an exception's message or a source line
    may hold a number).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # malformed format string: mask the raw parts
            message = f"{record.msg} {record.args}"
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
