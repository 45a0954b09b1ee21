"""Signing in and out: the login page, and the same for API clients.

The login form is protected against login CSRF by a double-submit token (a random value
in a short-lived cookie and in the form, compared on POST); once signed in, every unsafe
request carries the session's own CSRF token (see :mod:`bot.web.deps`).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlmodel import Session

from bot.store.models import UserRow
from bot.web.audit import audit
from bot.web.config import LOOPBACK_HOSTS
from bot.web.deps import DB, SESSION_COOKIE, Viewer, clock, engine_of, viewer, web_settings
from bot.web.i18n import N_
from bot.web.pages import page_gettext, render
from bot.web.security import LoginError, OpenedSession, authenticate, close_session, open_session

router = APIRouter()
LOGIN_CSRF_COOKIE = "bot_login_csrf"


def _page_text(request: Request, message: str) -> str:
    """A fixed message of the sign-in page in the page's language."""
    return page_gettext(request)(message)


N_("the form expired: try again")  # for the catalogue (translated by _page_text)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would help phishing."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _set_session_cookie(request: Request, response: Response, opened: OpenedSession) -> None:
    cfg = web_settings(request)
    response.set_cookie(
        SESSION_COOKIE,
        opened.token,
        max_age=cfg.session_max_hours * 3600,
        httponly=True,
        secure=cfg.secure_cookies,
        samesite="lax",
        path="/",
    )


def _sign_in(
    request: Request, session: Session, username: str, password: str
) -> tuple[UserRow, OpenedSession]:
    """Check the password (the attempt is counted in its own transaction, see
    :func:`authenticate`), then audit and open the session in the request's."""
    now = clock(request)
    try:
        user = authenticate(engine_of(request), username, password, now, web_settings(request))
    except LoginError as exc:
        audit(session, exc.username, "login_failed", "user", exc.username, reason=exc.reason)
        session.commit()  # the audit event stays, whatever follows
        raise
    audit(session, user.username, "login", "user", user.id or "")
    return user, open_session(session, user, now, web_settings(request))


def cookie_dropped_over_http(request: Request) -> bool:
    """True when this browser will silently drop the ``Secure`` session cookie: the page
    came over plain HTTP (after any proxy's X-Forwarded-Proto) to a host that is not
    loopback, with ``web.secure_cookies`` on. Signing in would seem to do nothing."""
    host = (request.url.hostname or "").lower().strip("[]")
    return (
        web_settings(request).secure_cookies
        and request.url.scheme == "http"
        and host not in LOOPBACK_HOSTS
    )


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str = "/") -> Response:
    token = secrets.token_urlsafe(24)
    page = render(
        request, "login.html", None, next=_safe_next(next), login_csrf=token,
        plain_http=cookie_dropped_over_http(request),
    )  # fmt: skip
    page.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=web_settings(request).secure_cookies,
        samesite="strict",
    )
    return page


@router.post("/login", include_in_schema=False)
def login_submit(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    login_csrf: str = Form(""),
    next: str = Form("/"),
    session: Session = DB,
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not login_csrf or not hmac.compare_digest(cookie, login_csrf):
        return render(
            request, "login.html", None, 403, next=_safe_next(next), login_csrf=cookie,
            error=_page_text(request, "the form expired: try again"), plain_http=cookie_dropped_over_http(request),
        )  # fmt: skip
    try:
        _user, opened = _sign_in(request, session, username, password)
    except LoginError as exc:
        return render(
            request, "login.html", None, 401, next=_safe_next(next), login_csrf=cookie,
            error=_page_text(request, exc.public), username=username, plain_http=cookie_dropped_over_http(request),
        )  # fmt: skip
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session_cookie(request, response, opened)
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, who: Viewer = Depends(viewer), session: Session = DB) -> Response:
    close_session(session, request.cookies.get(SESSION_COOKIE, ""))
    audit(session, who.username, "logout", "user", who.user_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- API ---------------------------------------------------------------------------------


class Credentials(BaseModel):
    username: str
    password: str


class SessionInfo(BaseModel):
    username: str
    role: str
    #: Send it back as the X-CSRF-Token header on every POST/PUT/PATCH/DELETE.
    csrf_token: str


@router.post("/api/v1/session", response_model=SessionInfo, tags=["session"])
def api_login(request: Request, body: Credentials, session: Session = DB) -> Response:
    """Sign in; the session cookie is set on the response."""
    try:
        user, opened = _sign_in(request, session, body.username, body.password)
    except LoginError as exc:
        return JSONResponse({"detail": exc.public}, status_code=401)
    response = JSONResponse(
        SessionInfo(
            username=user.username, role=user.role, csrf_token=opened.csrf_token
        ).model_dump()
    )
    _set_session_cookie(request, response, opened)
    return response


@router.get("/api/v1/session", response_model=SessionInfo, tags=["session"])
def api_whoami(who: Viewer = Depends(viewer)) -> SessionInfo:
    return SessionInfo(username=who.username, role=who.role, csrf_token=who.csrf_token)


@router.delete("/api/v1/session", status_code=204, tags=["session"])
def api_logout(request: Request, who: Viewer = Depends(viewer), session: Session = DB) -> Response:
    close_session(session, request.cookies.get(SESSION_COOKIE, ""))
    audit(session, who.username, "logout", "user", who.user_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
