"""How an import file's bytes become text: strictly, one physical line at a time.

A bank's export is one encoding, but files get edited and concatenated: one GBK line
pasted into a UTF-8 file must not turn the whole file into GB18030 (every other name
would be stored, and spoken, as mojibake). So the encoding is decided for the file as a
whole and every line is then decoded strictly in it; a line that does not decode is
reported by its number (its record is rejected) and never guessed at.

The decision, in order:

1. ``encoding`` given (``--encoding``): that codec, no detection;
2. a UTF-8 byte-order mark: UTF-8; a UTF-16/32 one: refused (the importer reads only
   ASCII-compatible encodings);
3. the whole file is valid UTF-8: UTF-8;
4. otherwise the lines holding non-ASCII bytes vote: if at least as many are valid UTF-8
   as are not, UTF-8 (the others are rejected); else GB18030, where a line that is
   valid UTF-8 is rejected too (it decodes as GB18030, but as mojibake).
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

UTF8 = "utf-8"
GB18030 = "gb18030"
_UTF8_BOM = codecs.BOM_UTF8
#: Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
#: What must encode to itself for lines to be split on bytes and CSV parsed as text.
_ASCII_PROBE = '\t\r\n ",;0123456789abcxyzABCXYZ{}[]:'


class DecodeRefused(ValueError):
    """The file cannot be decoded at all (the message is shown to the operator)."""


class EncodingSource(StrEnum):
    GIVEN = "given"  # the caller named it
    BOM = "byte-order mark"
    DETECTED = "detected"


@dataclass(frozen=True)
class Decoded:
    """A file's text, with the physical lines (1-based) that did not decode and why.

    A bad line's text holds U+FFFD where its undecodable bytes were: its commas, quotes
    and line breaks stay where they were, so the records around it parse as usual."""

    text: str
    encoding: str
    source: EncodingSource
    bad_lines: Mapping[int, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``"UTF-8 (detected)"``: for the import summary."""
        return f"{display_name(self.encoding)} ({self.source.value})"


def display_name(encoding: str) -> str:
    return encoding.upper().replace("_", "-")


def canonical(encoding: str) -> str:
    """The codec's canonical name; refuses unknown codecs and ones the line splitting and
    CSV parsing cannot work with (UTF-16, UTF-32 and other non-ASCII-compatible ones)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise DecodeRefused(f"unknown encoding '{encoding}'") from None
    if name == "utf-8-sig":
        return UTF8
    try:
        compatible = _ASCII_PROBE.encode(name) == _ASCII_PROBE.encode("ascii")
    except (UnicodeError, LookupError):
        compatible = False
    if not compatible:
        raise DecodeRefused(
            f"encoding '{encoding}' is not ASCII-compatible; save the file as UTF-8"
        )
    return name


def decode(data: bytes, encoding: str | None = None) -> Decoded:
    """Decode ``data`` as described in the module docstring."""
    if encoding is not None:
        name = canonical(encoding)
        if data.startswith(_UTF8_BOM):
            if name != UTF8:
                raise DecodeRefused(
                    f"the file starts with a UTF-8 byte-order mark, yet the encoding "
                    f"'{encoding}' was given: it is UTF-8"
                )
            data = data[len(_UTF8_BOM) :]
        return _strict(data, name, EncodingSource.GIVEN)
    if data.startswith(_UTF8_BOM):
        return _strict(data[len(_UTF8_BOM) :], UTF8, EncodingSource.BOM)
    for bom, wide in _WIDE_BOMS:
        if data.startswith(bom):
            raise DecodeRefused(f"the file is {wide} text; save it as UTF-8 (CSV UTF-8)")
    try:
        return Decoded(data.decode(UTF8), UTF8, EncodingSource.DETECTED)
    except UnicodeDecodeError:
        pass
    lines = data.splitlines(keepends=True)
    wide_lines = [line for line in lines if not line.isascii()]
    utf8_lines = sum(_decodes(line, UTF8) for line in wide_lines)
    if utf8_lines >= len(wide_lines) - utf8_lines:
        return _strict(data, UTF8, EncodingSource.DETECTED, lines=lines)
    return _strict(data, GB18030, EncodingSource.DETECTED, lines=lines, refuse_utf8=True)


def _decodes(line: bytes, encoding: str) -> bool:
    try:
        line.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _strict(
    data: bytes,
    encoding: str,
    source: EncodingSource,
    *,
    lines: list[bytes] | None = None,
    refuse_utf8: bool = False,
) -> Decoded:
    """Every line decoded in ``encoding``; ``refuse_utf8`` also rejects non-ASCII lines
    that are valid UTF-8 (detected GB18030: such a line is UTF-8 pasted in)."""
    if not refuse_utf8:
        try:  # the usual case, and much faster than line by line
            return Decoded(data.decode(encoding), encoding, source)
        except UnicodeDecodeError:
            pass
    parts: list[str] = []
    bad: dict[int, str] = {}
    for number, line in enumerate(lines or data.splitlines(keepends=True), start=1):
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError as exc:
            parts.append(line.decode(encoding, errors="replace"))
            bad[number] = _not_valid(number, line, encoding, exc)
            continue
        if refuse_utf8 and not line.isascii() and _decodes(line, UTF8):
            bad[number] = (
                f"line {number} is UTF-8 text, the rest of the file is "
                f"{display_name(encoding)}: re-export the file in one encoding"
            )
        parts.append(text)
    return Decoded("".join(parts), encoding, source, bad)


def _not_valid(number: int, line: bytes, encoding: str, exc: UnicodeDecodeError) -> str:
    reason = (
        f"line {number} is not valid {display_name(encoding)} "
        f"(byte 0x{line[exc.start]:02X} at byte {exc.start + 1} of the line)"
    )
    if encoding == UTF8 and _decodes(line, GB18030):
        reason += " (it decodes as GB18030: GBK text pasted into a UTF-8 file?)"
    return reason
