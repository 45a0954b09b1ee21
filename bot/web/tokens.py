"""API tokens: machines' credentials for the JSON API, besides the browser session.

* An admin creates a token with a name and one dashboard role (``bot users token create``
  or ``POST /api/v1/tokens``); its secret is shown once and never stored: the database
  keeps its SHA-256 (the secret is 256 random bits, so there is nothing to guess and a
  slow hash would buy nothing) and its first characters for display.
* A client sends ``Authorization: Bearer <secret>`` on ``/api/`` routes only (pages never
  accept one). It acts with the token's role, minus what needs a person
  (:data:`bot.web.roles.PERSONAL`), and needs no CSRF token: CSRF protects cookies, which
  a browser sends by itself; a bearer secret is sent only by code that holds it.
* Revoked, expired and unknown tokens are refused (401) and the refusal is audited, as
  are creation and revocation. Audit events name a token ``token:<name>``, never its
  secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.store.models import ApiTokenRow
from bot.web.roles import Role

#: Every secret starts with this, so that a leaked one is recognisable (secret scanners).
SECRET_PREFIX = "cbt_"
#: Characters of the secret kept for display: the marker and 8 random characters.
SHOWN_CHARS = len(SECRET_PREFIX) + 8
#: ``last_used_at`` is written at most this often per token (not on every request).
TOUCH_EVERY = dt.timedelta(seconds=60)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,59}")


class TokenError(ValueError):
    """A token that cannot be created or revoked as asked (message for the admin)."""


class TokenRefused(Exception):
    """A bearer secret that does not authenticate. ``reason`` is for the audit log."""

    def __init__(self, reason: str, token: ApiTokenRow | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token = token


@dataclass(frozen=True)
class IssuedToken:
    row: ApiTokenRow
    #: The secret, to hand to the machine once; only its hash is stored.
    secret: str


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def actor(row: ApiTokenRow) -> str:
    """How the audit log names what a token did."""
    return f"token:{row.name}"[:60]


def shown(secret: str) -> str:
    """What of a presented secret may be written down: its first characters, and only
    when it has the shape of ours (anything else may be some other system's secret)."""
    return secret[:SHOWN_CHARS] if secret.startswith(SECRET_PREFIX) else ""


def valid_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TokenError(
            "a token name is 1 to 60 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return name


def state(row: ApiTokenRow, now: dt.datetime) -> str:
    """``live``, ``revoked`` or ``expired``."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "live"


def live(row: ApiTokenRow, now: dt.datetime) -> bool:
    return state(row, now) == "live"


def create_token(
    session: Session,
    name: str,
    role: Role | str,
    created_by: str,
    now: dt.datetime,
    expires_at: dt.datetime | None = None,
) -> IssuedToken:
    """A new token in the caller's transaction. TokenError when the name is invalid or
    a live token already has it (revoke that one first: names say what a token is for)."""
    name = valid_name(name)
    try:
        role = Role(role)
    except ValueError:
        raise TokenError(f"role must be one of {', '.join(r.value for r in Role)}") from None
    if expires_at is not None and expires_at <= now:
        raise TokenError("the expiry must be in the future")
    same = session.exec(select(ApiTokenRow).where(ApiTokenRow.name == name)).all()
    if any(live(t, now) for t in same):
        raise TokenError(f"a live token is already named '{name}'; revoke it first")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(
        name=name,
        role=role.value,
        secret_hash=secret_hash(secret),
        prefix=secret[:SHOWN_CHARS],
        created_by=created_by[:60],
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return IssuedToken(row, secret)


def list_tokens(session: Session) -> list[ApiTokenRow]:
    """Every token, newest first (revoked and expired ones included)."""
    query = select(ApiTokenRow).order_by(col(ApiTokenRow.created_at).desc(), col(ApiTokenRow.id))
    return list(session.exec(query).all())


def find_live(session: Session, name_or_id: str, now: dt.datetime) -> ApiTokenRow:
    """The live token named ``name_or_id``, or with that id; TokenError if none."""
    rows = session.exec(select(ApiTokenRow).where(ApiTokenRow.name == name_or_id)).all()
    if not rows and name_or_id.isdigit() and len(name_or_id) < 10:
        by_id = session.get(ApiTokenRow, int(name_or_id))
        rows = [by_id] if by_id is not None else []
    found = [t for t in rows if live(t, now)]
    if not found:
        raise TokenError(f"no live token '{name_or_id}'")
    return found[0]


def revoke(session: Session, row: ApiTokenRow, now: dt.datetime) -> ApiTokenRow:
    """Revoke in the caller's transaction: from its commit on, the secret is refused."""
    row.revoked_at = now
    session.add(row)
    return row


def authenticate(session: Session, secret: str, now: dt.datetime) -> ApiTokenRow:
    """The live token of a bearer secret (``last_used_at`` updated at most once a
    minute), or :class:`TokenRefused`."""
    digest = secret_hash(secret)
    row = session.exec(select(ApiTokenRow).where(ApiTokenRow.secret_hash == digest)).first()
    # the lookup is by hash; comparing again in constant time costs nothing
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        raise TokenRefused("unknown token")
    if row.revoked_at is not None:
        raise TokenRefused("revoked token", row)
    if row.expires_at is not None and row.expires_at <= now:
        raise TokenRefused("expired token", row)
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        row.last_used_at = now
        session.add(row)
    return row
