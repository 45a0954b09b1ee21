"""Characters an imported value may not hold.

Names, the branch and the counterparty are spoken to the callee (the name before the
identity check) and shown to reviewers, so they hold printable text only: no control
characters (not even a tab or a line break), no invisible formatting characters, no
bidirectional controls (which reorder what a reviewer sees without being seen, as in
"Trojan Source"), and no U+FFFD (the mark of text already damaged by a wrong decoding).
Every other value may hold a tab or a line break (a free-text note), never another
control character, a bidirectional control or a lone surrogate (which PostgreSQL
refuses to store).
"""

from __future__ import annotations

import unicodedata

#: U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Control characters a free-text (not spoken) value may hold.
FREE_TEXT_CONTROLS = frozenset("\t\n\r")
_REPLACEMENT = "\ufffd"


def _kind(char: str, spoken: bool) -> str | None:
    """Why ``char`` is refused, or None."""
    category = unicodedata.category(char)
    if char in BIDI_CONTROLS:
        return "a bidirectional-text control"
    if category == "Cs":
        return "a lone surrogate"
    if category == "Cc" and (spoken or char not in FREE_TEXT_CONTROLS):
        return "a control character"
    if spoken and category in ("Cf", "Zl", "Zp"):
        return "an invisible formatting character"
    if spoken and char == _REPLACEMENT:
        return "the mark of text damaged by a wrong encoding"
    return None


def refused_character(text: str, *, spoken: bool) -> str | None:
    """A reason naming the first character of ``text`` it may not hold, or None."""
    if text.isprintable() and _REPLACEMENT not in text:
        return None  # the usual case, at C speed: nothing refused is printable
    for index, char in enumerate(text, start=1):
        kind = _kind(char, spoken)
        if kind is not None:
            name = f" {unicodedata.name(char)}" if unicodedata.name(char, "") else ""
            return f"contains U+{ord(char):04X}{name} ({kind}) at character {index}"
    return None
