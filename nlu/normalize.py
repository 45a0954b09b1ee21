"""Text normalisation for the Chinese NLU.

Whisper often writes Traditional characters and sometimes full-width Latin letters or
digits; the rest of the NLU works on one canonical form:

* Traditional -> Simplified (OpenCC ``t2s``);
* full-width ASCII letters, digits and number punctuation -> half-width, while Chinese
  punctuation (，。！？；：、) is kept because clause boundaries drive negation scope;
* whitespace between two CJK characters is removed (ASR inserts it at segment
  boundaries), any other run of whitespace becomes one space; leading/trailing stripped.

Chinese numerals are *not* rewritten in running text (a sentence-level transform turns
一直 or 一家 into digits); :func:`to_number` converts an already extracted span.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Protocol

import cn2an


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


_converter: _Converter | None = None
_converter_lock = threading.Lock()


def _t2s() -> _Converter:
    """The OpenCC converter, built once on first use (loading its dictionaries is slow)."""
    global _converter
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                import opencc

                _converter = opencc.OpenCC("t2s")
    return _converter


# Full-width characters folded to ASCII: letters, digits and the symbols that occur in
# numbers, phone numbers and amounts. Full-width ，！？；：（） stay as they are.
_FOLDED_SYMBOLS = "＋－．％＠＃＆＊／＝＿"
_FULLWIDTH_TABLE: dict[int, int] = {
    cp: cp - 0xFEE0
    for cp in range(0xFF01, 0xFF5F)
    if chr(cp).isalnum() or chr(cp) in _FOLDED_SYMBOLS
}

_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Return the canonical form of an utterance (see module docstring)."""
    text = unicodedata.normalize("NFC", text).replace("\u3000", " ")
    text = text.translate(_FULLWIDTH_TABLE)
    text = _t2s().convert(text)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    return _SPACES.sub(" ", text).strip()


_THOUSANDS_SEPARATOR = re.compile(r"(?<=\d)[,，](?=\d{3}(?:\D|$))")
# cn2an reads 三点五 and 3.5万 but not 三点五万: split off the magnitude ourselves.
_DECIMAL_WITH_MAGNITUDE = re.compile(r"(?P<number>.+点.+?)(?P<magnitude>[百千万亿])")
_MAGNITUDES = {"百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}


def to_number(span: str) -> float | None:
    """Value of a numeral span such as 八百, 五万, 12万, 3.5万, 一千二, 四万九千八, 1,200.

    Returns ``None`` when the span is not a pure numeral (currency suffixes such as 块/元
    must be removed by the caller).
    """
    span = _THOUSANDS_SEPARATOR.sub("", span.strip())
    if not span:
        return None
    decimal = _DECIMAL_WITH_MAGNITUDE.fullmatch(span)
    if decimal:
        number = to_number(decimal.group("number"))
        return None if number is None else number * _MAGNITUDES[decimal.group("magnitude")]
    try:
        value = cn2an.cn2an(span, "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return float(value)
