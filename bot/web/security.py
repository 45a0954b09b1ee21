"""Passwords, login sessions and lock-out.

* Passwords are hashed with argon2id (``argon2-cffi``'s defaults, rehashed on login when
  those defaults change) and must pass :mod:`bot.web.password_policy`.
* User names are normalised (:mod:`bot.web.usernames`): ``ADM1`` signs in as ``adm1``.
* A session is a random 256-bit token in an HttpOnly cookie; the database keeps only its
  SHA-256, plus the session's CSRF token. Sessions expire after an idle period and an
  absolute lifetime. :func:`open_session` and friends work in the caller's transaction.
* ``lockout_after`` failed logins in a row lock the account for ``lockout_minutes``.
  :func:`authenticate` takes the engine, not the request's session: before a password is
  checked, one conditional ``UPDATE ... RETURNING`` claims an attempt (refused once the
  account is locked) and commits at once, so however many logins run at the same time
  no more than ``lockout_after`` passwords are ever checked per lock-out period, on
  SQLite and PostgreSQL alike. A right password then clears the count.
* Unknown, disabled and locked users get the same answer as a wrong password and cost
  the same argon2 verification, so a login tells nobody which user names exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import case, false, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import ReturningUpdate
from sqlmodel import Session, col, delete, select

from bot.store.models import UserRow, WebSessionRow
from bot.web.config import WebSettings
from bot.web.i18n import N_
from bot.web.password_policy import check_password
from bot.web.roles import Role
from bot.web.usernames import find_user, name_taken, normalise_username, valid_username

_hasher = PasswordHasher()
#: Verified against when no real hash may be checked, so that every refusal costs as long.
_DUMMY_HASH = _hasher.hash("not a password: timing equaliser")
#: The one answer to every refused login, whatever the reason.
LOGIN_REFUSED = N_("user name or password is wrong")


class LoginError(Exception):
    """Why a login was refused. ``reason`` is for the audit log, ``username`` is the name
    tried (normalised); everybody is shown the same :data:`public` text."""

    public = LOGIN_REFUSED

    def __init__(self, reason: str, username: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.username = username


def hash_password(password: str, username: str = "") -> str:
    """The argon2 hash of a password the policy accepts (else ``PasswordRejected``)."""
    check_password(password, username)
    return _hasher.hash(password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, username: str, password: str, role: Role | str) -> UserRow:
    """Add a user with the normalised name. ValueError when the name is invalid or taken
    (in any spelling), or the password is refused; after an IntegrityError-turned-
    ValueError (a concurrent creation of the same name) the caller must roll back."""
    role = Role(role)
    name = valid_username(username)
    taken = f"user '{name}' already exists (user names ignore case, width and spacing)"
    if name_taken(session, name):
        raise ValueError(taken)
    user = UserRow(username=name, password_hash=hash_password(password, name), role=role.value)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # created meanwhile by someone else
        raise ValueError(taken) from exc
    return user


def authenticate(
    engine: Engine, username: str, password: str, now: dt.datetime, cfg: WebSettings
) -> UserRow:
    """The user (detached), or :class:`LoginError`. Counts the attempt, in its own
    committed transaction, before the password is checked (see the module notes)."""
    with Session(engine, expire_on_commit=False) as session:
        user = find_user(session, username)
        if user is None:
            _verify(_DUMMY_HASH, password)
            raise LoginError("unknown user", _shown(username))
        assert user.id is not None
        claimed = session.connection().execute(_claim_attempt(user.id, now, cfg)).first()
        session.commit()
    if claimed is None:
        _verify(_DUMMY_HASH, password)
        raise LoginError("disabled user" if user.disabled else "locked", user.username)
    stored_hash, attempts = claimed
    if not _verify(stored_hash, password):
        locked_now = attempts >= cfg.lockout_after
        raise LoginError(
            "wrong password, now locked" if locked_now else "wrong password", user.username
        )
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if _hasher.check_needs_rehash(stored_hash):
        values["password_hash"] = _hasher.hash(password)
    with engine.begin() as conn:
        conn.execute(update(UserRow).where(col(UserRow.id) == user.id).values(**values))
    user.failed_logins, user.locked_until = 0, None
    return user


def _claim_attempt(user_id: int, now: dt.datetime, cfg: WebSettings) -> ReturningUpdate[str, int]:
    """One attempt at the password of an active, unlocked user, counted as failed until
    it succeeds; the attempt that reaches the limit also sets the lock. Returns the hash
    to check and the count, or no row (disabled, or locked). An expired lock starts the
    count afresh. Both databases evaluate the whole statement against the row as it was,
    and PostgreSQL re-checks the WHERE after waiting for a concurrent update."""
    locked_until = col(UserRow.locked_until)
    count = case((locked_until.is_not(None), 0), else_=col(UserRow.failed_logins)) + 1
    until = now + dt.timedelta(minutes=cfg.lockout_minutes)
    return (
        update(UserRow)
        .where(
            col(UserRow.id) == user_id,
            col(UserRow.disabled) == false(),
            or_(locked_until.is_(None), locked_until <= now),
        )
        .values(
            failed_logins=count,
            locked_until=case((count >= cfg.lockout_after, until), else_=None),
        )
        .returning(col(UserRow.password_hash), col(UserRow.failed_logins))
    )


def _shown(username: str) -> str:
    """A tried name as the audit log keeps it (normalised, bounded)."""
    return normalise_username(username)[:60] or "?"


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(stored, password))
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
