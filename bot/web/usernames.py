"""Dashboard user names: one canonical spelling per person.

A name is stored and looked up normalised: Unicode NFKC with case folded
(``NFKC(casefold(NFKC(name)))``, Unicode's caseless identifier match), white space trimmed
and every run of it (NBSP and ideographic spaces included) collapsed to one space. So
``ADM1``, ``" adm1 "`` and the full-width ``ａｄｍ１`` all name the account ``adm1``, and
none of them can be created beside it.

Accounts created before names were normalised may be stored in another spelling:
:func:`find_user` still finds them (by comparing normalised forms; where two of them
normalise alike, only by their exact spelling, as before) and :func:`name_taken` refuses
a new name that any of them holds.
"""

from __future__ import annotations

import unicodedata

from sqlmodel import Session, select

from bot.store.models import UserRow

MAX_USERNAME_LENGTH = 60


def normalise_username(raw: str) -> str:
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())
    return " ".join(folded.split())


def valid_username(raw: str) -> str:
    """The normalised name, or ValueError saying why it cannot be a user name."""
    name = normalise_username(raw)
    if not name or len(name) > MAX_USERNAME_LENGTH:
        raise ValueError(f"a user name is 1-{MAX_USERNAME_LENGTH} characters")
    if not name.isprintable():  # control and format characters (zero-width space ...)
        raise ValueError("a user name has no control or invisible characters")
    return name


def find_user(session: Session, raw: str) -> UserRow | None:
    """The account a typed name means (see the module notes), or None."""
    name = normalise_username(raw)
    if not name or len(name) > MAX_USERNAME_LENGTH:
        return None
    exact = session.exec(select(UserRow).where(UserRow.username == name)).first()
    if exact is not None:
        return exact
    legacy = {
        stored: user_id
        for user_id, stored in session.exec(select(UserRow.id, UserRow.username))
        if normalise_username(stored) == name
    }
    if len(legacy) > 1:  # old accounts that normalise alike: only the exact spelling
        legacy = {k: v for k, v in legacy.items() if k == raw.strip()}
    return session.get(UserRow, next(iter(legacy.values()))) if len(legacy) == 1 else None


def name_taken(session: Session, name: str) -> bool:
    """Whether normalised ``name`` is an existing account's, in any stored spelling."""
    stored = session.exec(select(UserRow.username)).all()
    return any(normalise_username(s) == name for s in stored)
