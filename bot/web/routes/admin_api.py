"""Admins' API: API tokens (``/api/v1/tokens``) and dashboard users (``/api/v1/users``),
the same operations as ``bot users`` and ``bot users token``, audited the same way."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from bot.store.models import ApiTokenRow, UserRow
from bot.web import tokens
from bot.web.audit import audit
from bot.web.deps import DB, Viewer, clock, require
from bot.web.errors import refusals
from bot.web.params import DbId
from bot.web.roles import Permission, Role
from bot.web.security import create_user
from bot.web.user_admin import update_user
from bot.web.usernames import name_taken, normalise_username

router = APIRouter()
MAY_MANAGE_USERS = require(Permission.MANAGE_USERS)


# -- tokens -----------------------------------------------------------------------------


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=60, description="What the token is for")
    role: Role
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    state: str = Field(description="live | revoked | expired")
    prefix: str = Field(description="The secret's first characters")
    created_by: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class IssuedTokenOut(TokenOut):
    secret: str = Field(description="Shown once: send it as `Authorization: Bearer <secret>`")


def _token_out(row: ApiTokenRow, now: dt.datetime) -> TokenOut:
    assert row.id is not None
    return TokenOut(
        id=row.id, name=row.name, role=row.role, state=tokens.state(row, now), prefix=row.prefix,
        created_by=row.created_by, created_at=row.created_at, last_used_at=row.last_used_at,
        expires_at=row.expires_at, revoked_at=row.revoked_at,
    )  # fmt: skip


@router.get("/api/v1/tokens", response_model=list[TokenOut], tags=["tokens"])
def api_tokens(
    request: Request, _who: Viewer = Depends(MAY_MANAGE_USERS), session: Session = DB
) -> list[TokenOut]:
    """Every API token, newest first (never a secret)."""
    now = clock(request)
    return [_token_out(t, now) for t in tokens.list_tokens(session)]


@router.post(
    "/api/v1/tokens",
    response_model=IssuedTokenOut,
    status_code=201,
    tags=["tokens"],
    responses=refusals(409),
)
def api_create_token(
    request: Request,
    body: TokenIn,
    who: Viewer = Depends(MAY_MANAGE_USERS),
    session: Session = DB,
) -> IssuedTokenOut:
    """Create a token with the role's permissions, less what needs a person (verdicts,
    script authoring and approval, revealing numbers). The secret is in this answer only."""
    now = clock(request)
    expires = now + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    try:
        issued = tokens.create_token(session, body.name, body.role, who.username, now, expires)
    except tokens.TokenError as exc:
        raise HTTPException(409, str(exc)) from None
    row = issued.row
    audit(
        session, who.username, "token_created", "api_token", row.id or "",
        name=row.name, role=row.role, prefix=row.prefix,
    )  # fmt: skip
    return IssuedTokenOut(**_token_out(row, now).model_dump(), secret=issued.secret)


@router.delete(
    "/api/v1/tokens/{token_id}",
    response_model=TokenOut,
    tags=["tokens"],
    responses=refusals(404, 409),
)
def api_revoke_token(
    request: Request,
    token_id: DbId,
    who: Viewer = Depends(MAY_MANAGE_USERS),
    session: Session = DB,
) -> TokenOut:
    """Revoke a token: it is refused (401) from this answer on."""
    now = clock(request)
    row = session.get(ApiTokenRow, token_id)
    if row is None:
        raise HTTPException(404, f"no token {token_id}")
    if row.revoked_at is not None:
        raise HTTPException(409, f"token {token_id} is already revoked")
    tokens.revoke(session, row, now)
    audit(session, who.username, "token_revoked", "api_token", token_id, name=row.name)
    return _token_out(row, now)


# -- users ------------------------------------------------------------------------------


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=60)
    password: str = Field(min_length=1, max_length=1000, description="Must pass the policy")
    role: Role


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    disabled: bool
    failed_logins: int
    locked_until: dt.datetime | None
    created_at: dt.datetime


def _user_out(u: UserRow) -> UserOut:
    assert u.id is not None
    return UserOut(
        id=u.id, username=u.username, role=u.role, disabled=u.disabled,
        failed_logins=u.failed_logins, locked_until=u.locked_until, created_at=u.created_at,
    )  # fmt: skip


@router.get("/api/v1/users", response_model=list[UserOut], tags=["users"])
def api_users(_who: Viewer = Depends(MAY_MANAGE_USERS), session: Session = DB) -> list[UserOut]:
    """Every dashboard user with role, state and lock-out."""
    return [_user_out(u) for u in session.exec(select(UserRow).order_by(UserRow.username))]


@router.post(
    "/api/v1/users",
    response_model=UserOut,
    status_code=201,
    tags=["users"],
    responses=refusals(409),
)
def api_create_user(
    body: UserIn, who: Viewer = Depends(MAY_MANAGE_USERS), session: Session = DB
) -> UserOut:
    """Create a user. The name is stored normalised; one taken in any spelling is a 409,
    an invalid one or a password the policy refuses a 422 saying why."""
    if name_taken(session, normalise_username(body.username)):
        raise HTTPException(409, f"user '{normalise_username(body.username)}' already exists")
    try:
        user = create_user(session, body.username, body.password, body.role)
    except ValueError as exc:
        session.rollback()  # a name taken meanwhile leaves the flush failed
        raise HTTPException(422, str(exc)) from None
    audit(
        session, who.username, "user_created", "user", user.id or "",
        username=user.username, role=user.role,
    )  # fmt: skip
    return _user_out(user)


@router.post(
    "/api/v1/users/{user_id}/disable",
    response_model=UserOut,
    tags=["users"],
    responses=refusals(404, 409),
)
def api_disable_user(
    user_id: DbId, who: Viewer = Depends(MAY_MANAGE_USERS), session: Session = DB
) -> UserOut:
    """Disable a user and end their sessions (an admin cannot disable themselves)."""
    user = session.get(UserRow, user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    if user_id == who.user_id:
        raise HTTPException(409, "you cannot disable your own account")
    update_user(session, user, disabled=True)
    audit(session, who.username, "user_disabled", "user", user_id, username=user.username)
    return _user_out(user)
