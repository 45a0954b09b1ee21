"""Passwords, login sessions and lock-out. Pure functions over a database session: the
routes own the transaction, so a login, its audit event and its session row commit
together.

* Passwords are hashed with argon2id (``argon2-cffi``'s defaults, rehashed on login when
  those defaults change).
* A session is a random 256-bit token in an HttpOnly cookie; the database keeps only its
  SHA-256, plus the session's CSRF token. Sessions expire after an idle period and an
  absolute lifetime.
* ``lockout_after`` failed logins in a row lock the account for ``lockout_minutes``;
  an unknown user name costs the same time as a wrong password and gives the same answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, delete, select

from bot.store.models import UserRow, WebSessionRow
from bot.web.config import WebSettings
from bot.web.roles import Role

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so both cases take as long.
_DUMMY_HASH = _hasher.hash("not a password: timing equaliser")
MIN_PASSWORD_LENGTH = 12


class LoginError(Exception):
    """Why a login was refused. ``reason`` is for the audit log; users see ``public``."""

    def __init__(self, reason: str, public: str = "user name or password is wrong") -> None:
        super().__init__(reason)
        self.reason = reason
        self.public = public


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, username: str, password: str, role: Role | str) -> UserRow:
    role = Role(role)
    if not username or len(username) > 60 or not username.isprintable():
        raise ValueError("a user name is 1-60 printable characters")
    if session.exec(select(UserRow).where(UserRow.username == username)).first():
        raise ValueError(f"user '{username}' already exists")
    user = UserRow(username=username, password_hash=hash_password(password), role=role.value)
    session.add(user)
    session.flush()
    return user


def authenticate(
    session: Session, username: str, password: str, now: dt.datetime, cfg: WebSettings
) -> UserRow:
    """The user, or :class:`LoginError`. Counts failures and locks the account."""
    user = session.exec(select(UserRow).where(UserRow.username == username)).first()
    if user is None:
        _verify(_DUMMY_HASH, password)
        raise LoginError("unknown user")
    if user.disabled:
        _verify(_DUMMY_HASH, password)
        raise LoginError("disabled user")
    if user.locked_until is not None and user.locked_until > now:
        _verify(_DUMMY_HASH, password)
        raise LoginError("locked", "too many failed logins: try again later")
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= cfg.lockout_after:
            user.locked_until = now + dt.timedelta(minutes=cfg.lockout_minutes)
            user.failed_logins = 0
        session.add(user)
        raise LoginError("wrong password")
    user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.add(user)
    return user


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class OpenedSession:
    token: str  # goes in the cookie, never stored
    csrf_token: str
    expires_at: dt.datetime


def open_session(
    session: Session, user: UserRow, now: dt.datetime, cfg: WebSettings
) -> OpenedSession:
    assert user.id is not None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + dt.timedelta(minutes=cfg.session_idle_minutes)
    session.add(
        WebSessionRow(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
        )
    )
    # expired sessions are swept on every login: the table stays small
    session.exec(delete(WebSessionRow).where(col(WebSessionRow.expires_at) < now))
    return OpenedSession(token, csrf, expires)


def resume_session(
    session: Session, token: str, now: dt.datetime, cfg: WebSettings
) -> tuple[WebSessionRow, UserRow] | None:
    """The live session of a cookie token (its idle expiry slides), or None."""
    row = session.exec(
        select(WebSessionRow).where(WebSessionRow.token_hash == token_hash(token))
    ).first()
    if row is None or row.expires_at <= now:
        return None
    if now - row.created_at > dt.timedelta(hours=cfg.session_max_hours):
        return None
    user = session.get(UserRow, row.user_id)
    if user is None or user.disabled:
        return None
    if (now - row.last_seen_at).total_seconds() > 60:  # don't write on every request
        row.last_seen_at = now
        row.expires_at = now + dt.timedelta(minutes=cfg.session_idle_minutes)
        session.add(row)
    return row, user


def close_session(session: Session, token: str) -> None:
    session.exec(delete(WebSessionRow).where(col(WebSessionRow.token_hash) == token_hash(token)))
