"""What makes a dashboard password acceptable, beyond its length.

Refused, each with its own message:

* fewer than :data:`MIN_PASSWORD_LENGTH` or more than :data:`MAX_PASSWORD_LENGTH` characters;
* containing the user name (also reversed or in leetspeak: ``l1nwe1``);
* digits only (dates, phone and card numbers are what an attacker tries first);
* one piece repeated (``abcabcabcabc``, ``woaiwoaiwoai``);
* made of at most :data:`MAX_GUESSABLE_PIECES` guessable pieces: common passwords (the
  list in ``common_passwords.txt``, also in leetspeak: ``p@ssw0rd``), runs of repeated,
  sequential or keyboard-adjacent characters (``aaaa``, ``6789``, ``lmnop``, ``qwerty``,
  ``1qaz``, ``zxcvbnm``), short numbers (``1314``, ``2024``) and dates (``19900101``).
  Separators (spaces, ``-_.,``) are ignored there, so ``woaini_1314_520`` counts as three.

This is a small, offline cousin of zxcvbn's idea (a password is as strong as the fewest
guessable pieces it splits into); it knows the Chinese habits (pinyin, 520/1314) that
zxcvbn's dictionaries lack, and its messages say which rule a password broke.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

from bot.web.usernames import normalise_username

MIN_PASSWORD_LENGTH = 12
#: Long passphrases are welcome; this only bounds the work of hashing and checking.
MAX_PASSWORD_LENGTH = 256
#: A password that splits into this many guessable pieces or fewer is refused.
MAX_GUESSABLE_PIECES = 4

_COMMON_FILE = Path(__file__).with_name("common_passwords.txt")
_SEPARATORS = re.compile(r"[\s\-_.,]+")
#: Leetspeak read back as letters; "1" and "!" may stand for i or l, hence two tables.
_LEET = (
    str.maketrans("@4310$5!7+", "aaeiossitt"),
    str.maketrans("@4310$5!7+", "aaelossltt"),
)
_ROWS = ("`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./")
_ROW_OFFSETS = (0.0, 0.5, 0.75, 1.25)  # how far each row is shifted right, in keys
_SHIFTED = dict(zip('~!@#$%^&*()_+{}|:"<>?', "`1234567890-=[]\\;',./", strict=True))
_KEYS = {
    key: (row, col + _ROW_OFFSETS[row])
    for row, keys in enumerate(_ROWS)
    for col, key in enumerate(keys)
}
_DATE = re.compile(
    r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])|(0[1-9]|[12]\d|3[01])(0[1-9]|1[0-2])(19|20)\d\d"
)


class PasswordRejected(ValueError):
    """A password the policy refuses; the message says why and what to do instead."""


def check_password(password: str, username: str = "") -> None:
    """Raise :class:`PasswordRejected` unless ``password`` is acceptable for ``username``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    text = unicodedata.normalize("NFKC", password).casefold()
    if _contains_name(text, username):
        raise PasswordRejected("a password must not contain the user name")
    core = _SEPARATORS.sub("", text)
    if core.isdigit():
        raise PasswordRejected(
            "a password of digits only is easy to guess (dates, phone and card numbers): use words"
        )
    if _is_periodic(core):
        raise PasswordRejected("a password must not be one piece repeated (abcabc, woaiwoai)")
    pieces, kinds = _fewest_pieces(core)
    if pieces == 1 and kinds == {"common"}:
        raise PasswordRejected("this is one of the most common passwords: choose another")
    if pieces == 1:
        raise PasswordRejected(
            "a password must not be a repeated, sequential or keyboard pattern "
            "(aaaa, 1234, abcd, qwerty, 1qaz2wsx)"
        )
    if pieces <= MAX_GUESSABLE_PIECES:
        raise PasswordRejected(
            "this password is made of common passwords, keyboard or number patterns "
            "(like woaini + 1314, qwerty + 2024): a phrase of several unrelated words "
            "is both stronger and easier to remember"
        )


def _contains_name(text: str, username: str) -> bool:
    """The name as typed, from 3 characters; reversed or in leetspeak, from 4 (shorter
    ones turn up by chance: ``woaini1314`` has ``nil``, "lin" backwards, in leetspeak)."""
    name = normalise_username(username)
    forms = {name, name.replace(" ", "")} - {""}
    variants = [text, *(text.translate(t) for t in _LEET)]
    for form in forms:
        if len(form) >= 3 and form in text:
            return True
        if len(form) >= 4 and any(f in v for f in (form, form[::-1]) for v in variants):
            return True
    return False


def _is_periodic(text: str) -> bool:
    """Whether ``text`` is a shorter piece repeated (the last copy may be cut short)."""
    n = len(text)
    return any(text[p:] == text[:-p] for p in range(1, n // 2 + 1))


@cache
def common_passwords() -> frozenset[str]:
    lines = _COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(s for line in lines if len(s := line.strip().casefold()) >= 3 and s[0] != "#")


def _predictable_step(a: str, b: str) -> bool:
    """Whether ``b`` is what a person would type after ``a`` without thinking."""
    if a == b:
        return True
    if a.isdigit() and b.isdigit():
        return (int(b) - int(a)) % 10 in (1, 9)  # 8-9-0-1 wraps round
    if a.isascii() and b.isascii() and a.isalpha() and b.isalpha() and abs(ord(a) - ord(b)) == 1:
        return True
    ka, kb = _KEYS.get(_SHIFTED.get(a, a)), _KEYS.get(_SHIFTED.get(b, b))
    if ka is None or kb is None:
        return False
    rows, cols = abs(ka[0] - kb[0]), abs(ka[1] - kb[1])
    return (rows == 0 and cols == 1) or (rows == 1 and cols < 1)


def _fewest_pieces(text: str) -> tuple[int, set[str]]:
    """The fewest guessable pieces ``text`` splits into, and their kinds. Any single
    character is a piece too, so the count is at most ``len(text)``."""
    n = len(text)
    words = common_passwords()
    longest = max(map(len, words))
    variants = [text, *(text.translate(t) for t in _LEET)]
    run_end = list(range(1, n + 1))  # run_end[i]: where the predictable run from i ends
    for i in range(n - 2, -1, -1):
        if _predictable_step(text[i], text[i + 1]):
            run_end[i] = run_end[i + 1]
    none: frozenset[str] = frozenset()
    best = [(0, none)] + [(n + 1, none)] * n

    def relax(j: int, count: int, kinds: frozenset[str], kind: str) -> None:
        if count < best[j][0]:
            best[j] = (count, kinds | {kind})

    for i in range(n):
        count, kinds = best[i][0] + 1, best[i][1]
        relax(i + 1, count, kinds, "char")
        for j in range(i + 3, min(n, i + longest) + 1):
            if any(v[i:j] in words for v in variants):
                relax(j, count, kinds, "common")
        for j in range(i + 3, run_end[i] + 1):
            relax(j, count, kinds, "pattern")
        for j in range(i + 2, min(n, i + 4) + 1):
            if text[i:j].isdigit():
                relax(j, count, kinds, "number")
        if _DATE.fullmatch(text, i, i + 8):
            relax(i + 8, count, kinds, "date")
    return best[n][0], set(best[n][1])
