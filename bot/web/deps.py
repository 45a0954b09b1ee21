"""Request plumbing shared by every route: the database session, the signed-in viewer,
permission checks and CSRF.

Pages and the JSON API share one login (the session cookie). Unsafe methods (POST, PUT,
PATCH, DELETE) must carry the session's CSRF token: a hidden ``csrf_token`` form field on
pages, an ``X-CSRF-Token`` header from scripts and API clients.

Machines may instead send an API token (``Authorization: Bearer``, :mod:`bot.web.tokens`)
to ``/api/`` routes: it takes precedence over a cookie, needs no CSRF token, and a token
that does not authenticate is refused (401, audited) rather than ignored. Pages never
read one.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.store.models import utcnow
from bot.web import tokens
from bot.web.audit import audit, note_client
from bot.web.config import WebSettings
from bot.web.roles import PERSONAL, Permission, allowed
from bot.web.security import resume_session

SESSION_COOKIE = "bot_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/"
#: Documents the bearer scheme in the OpenAPI document (Swagger UI's "Authorize").
BEARER = HTTPBearer(
    auto_error=False,
    description="An API token (`bot users token create`, docs/api.md); /api/ routes only",
)


class Refused(Exception):
    """A request refused by the plumbing below (answered in :mod:`bot.web.errors`); like
    an HTTP 4xx, it keeps what the request's transaction recorded (see :func:`db`)."""


class NotSignedIn(Refused):
    """No valid session: pages redirect to the login page, the API answers 401."""


class Forbidden(Refused):
    """Signed in, but the role lacks the permission (403); the attempt is audited."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


class CsrfError(Refused):
    """An unsafe request without the session's CSRF token (403)."""


class ServiceRefusal(Refused):
    """What a dashboard service (review, workspace ...) refuses, and why: one type for
    all of them, answered in one place (:func:`bot.web.errors.install`): the API gets an
    ``ErrorOut`` in English, a page the error page in its own language. As a
    :class:`Refused` it keeps what the request's transaction recorded (audit events).

    ``template`` is the English message id with ``%(name)s`` placeholders for
    ``params``; ``message`` is it filled; ``problems`` are the located errors behind a
    422/409 (the workspace's lint findings)."""

    #: Vocabulary of the placeholders that :meth:`shown` translates: name -> value ->
    #: English label (a subclass sets it, e.g. the workspace's version states).
    words: ClassVar[Mapping[str, Mapping[str, str]]] = {}

    def __init__(
        self, status: int, message: str, problems: list[Any] | None = None, **params: Any
    ) -> None:
        text = message % params if params else message
        super().__init__(text)
        self.status = status
        self.template = message
        self.message = text
        self.params = params
        self.problems = problems or []

    @property
    def status_code(self) -> int:
        return self.status

    def shown(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of ``gettext``, its vocabulary placeholders too."""
        filled = {
            name: gettext(self.words[name].get(value, value)) if name in self.words else value
            for name, value in self.params.items()
        }
        text = gettext(self.template)
        return text % filled if filled else text


@dataclass(frozen=True)
class Viewer:
    user_id: int
    username: str
    role: str
    csrf_token: str
    #: The API token's id when a machine sent one (``user_id`` is then 0, ``username``
    #: ``token:<name>``, and there is no CSRF token).
    token_id: int | None = None

    def can(self, permission: Permission) -> bool:
        if self.token_id is not None and permission in PERSONAL:
            return False
        return allowed(self.role, permission)


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def web_settings(request: Request) -> WebSettings:
    cfg: WebSettings = request.app.state.web
    return cfg


def clock(request: Request) -> dt.datetime:
    """Now (tests may pin it through ``app.state.clock``)."""
    now: Callable[[], dt.datetime] = getattr(request.app.state, "clock", utcnow)
    return now()


def db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed if the route returns or refuses the request
    (an HTTP 4xx still keeps what it recorded: audit events, the session's sliding
    expiry), rolled back if it fails."""
    with Session(engine_of(request), expire_on_commit=False) as session:
        # every audit event of the request carries the client's address
        note_client(session, request.client.host if request.client else None)
        try:
            yield session
        except HTTPException as exc:
            if exc.status_code < 500:
                session.commit()
            else:
                session.rollback()
            raise
        except Refused:
            session.commit()
            raise
        except BaseException:
            session.rollback()
            raise
        else:
            session.commit()


#: The request's session as routes take it. ``scope="function"``: committed when the
#: route returns, before the response is sent, so that a client following a redirect
#: (after a login, a verdict, a publish) sees what the request wrote; FastAPI's default
#: would commit only after the response had gone out.
DB = Depends(db, scope="function")


async def optional_viewer(
    request: Request,
    session: Session = DB,
    bearer: HTTPAuthorizationCredentials | None = Depends(BEARER),
) -> Viewer | None:
    if bearer is not None and request.url.path.startswith(API_PREFIX):
        return _token_viewer(request, session, bearer.credentials)
    found = cookie_viewer(request, session)
    request.state.viewer = found
    return found


def cookie_viewer(request: Request, session: Session) -> Viewer | None:
    """The viewer of the request's session cookie, or None (no cookie, or a session that
    expired or was closed). Slides the session's expiry in ``session`` (committed with
    the request, or not at all where the caller never commits)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    found = resume_session(session, token, clock(request), web_settings(request))
    if found is None:
        return None
    row, user = found
    assert user.id is not None
    return Viewer(user.id, user.username, user.role, row.csrf_token)


def _token_viewer(request: Request, session: Session, secret: str) -> Viewer:
    """The viewer of a bearer secret; a refusal is audited in the request's transaction
    (committed with the 401) by the token's name and the secret's first characters."""
    try:
        row = tokens.authenticate(session, secret, clock(request))
    except tokens.TokenRefused as exc:
        audit(
            session, tokens.actor(exc.token) if exc.token else "token:?", "token_refused",
            "api_token", (exc.token.id or "") if exc.token else "", reason=exc.reason,
            prefix=tokens.shown(secret), method=request.method, path=request.url.path,
        )  # fmt: skip
        raise NotSignedIn("the API token is not valid (unknown, revoked or expired)") from None
    assert row.id is not None
    found = Viewer(0, tokens.actor(row), row.role, "", token_id=row.id)
    request.state.viewer = found
    return found


async def viewer(request: Request, found: Viewer | None = Depends(optional_viewer)) -> Viewer:
    if found is None:
        raise NotSignedIn()
    if request.method in UNSAFE and found.token_id is None:  # CSRF protects cookies only
        await _check_csrf(request, found)
    return found


async def _check_csrf(request: Request, who: Viewer) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, who.csrf_token):
        raise CsrfError()


def require(permission: Permission) -> Callable[..., Viewer]:
    """Dependency: the signed-in viewer, who must hold ``permission``. A refusal is
    audited (``access_denied``) in the request's own transaction, which commits it with
    the refusal: a second session would wait on SQLite's write lock that this one holds."""

    async def check(
        request: Request, who: Viewer = Depends(viewer), session: Session = DB
    ) -> Viewer:
        if not who.can(permission):
            audit(
                session, who.username, "access_denied", "route", request.url.path,
                method=request.method, permission=permission.value,
            )  # fmt: skip
            raise Forbidden(permission.value)
        return who

    return check  # type: ignore[return-value]
