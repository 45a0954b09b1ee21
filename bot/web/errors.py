"""Refusals: the one error model of the JSON API, the responses every route documents, and
the handlers that answer each refusal as JSON (``/api/...``) or as the error page.

Every 4xx answer of the API is an :class:`ErrorOut`: ``detail`` says what is wrong in a
sentence, ``problems`` (possibly empty) lists where: an invalid parameter or body field
(``field`` is its location, such as ``query.page`` or ``body.reason``) or a line of a
script (``file``, ``line``). FastAPI's own validation answer (a list in ``detail``) and
its bare ``{"detail": ...}`` are replaced by this shape, so that one schema describes
every refusal in the OpenAPI document.

The same shape answers a request that found the database unreachable (a dropped
connection the pool's pre-ping could not replace, a server stopped or restarting): 503
with ``Retry-After``, the error page for pages, instead of a 500 and a traceback. The
next request tries the database again (nothing is cached across the outage).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Final

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.store.retry import describe, is_unreachable
from bot.web.deps import (
    SESSION_COOKIE,
    CsrfError,
    Forbidden,
    NotSignedIn,
    ServiceRefusal,
    Viewer,
    cookie_viewer,
    engine_of,
)
from bot.web.i18n import N_
from bot.web.pages import page_gettext, render

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
#: ``Retry-After`` (seconds) of a 503 while the database is unreachable: about how long
#: a server restart takes, short enough that a client polling the monitor resumes soon.
DB_RETRY_AFTER_S: Final = 5
#: While the database stays unreachable, at most one warning per this many seconds.
OUTAGE_LOG_EVERY_S: Final = 60.0


class ProblemOut(BaseModel):
    """Where a request is wrong: a parameter or body field, or a line of a document."""

    file: str = ""
    line: int | None = None
    field: str = ""
    message: str


def problem_out(problem: Any) -> ProblemOut:
    """A located problem of a service (a dataclass with ProblemOut's fields) as answered."""
    if isinstance(problem, ProblemOut):
        return problem
    if dataclasses.is_dataclass(problem) and not isinstance(problem, type):
        return ProblemOut(**dataclasses.asdict(problem))
    return ProblemOut(message=str(problem))


class ErrorOut(BaseModel):
    """Every refusal of the API (4xx), and the 503 of an unreachable database."""

    detail: str
    problems: list[ProblemOut] = Field(default_factory=list)


_MEANING = {
    400: "A body that cannot be read, or a request that cannot be done as asked",
    401: "Not signed in (or the session expired), or the API token is unknown, revoked or expired",
    403: "The role lacks the permission, the CSRF token is missing or wrong, or four eyes are needed",
    404: "No such object",
    409: "The object is not in a state that allows this",
    413: "The text is too large",
    422: "Invalid input: a parameter or body field is missing, of the wrong type or out of range",
    503: "The database is unreachable (restarting, or the connection dropped): try again "
    "after Retry-After seconds",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` documenting ``codes`` as :class:`ErrorOut` refusals."""
    return {code: {"model": ErrorOut, "description": _MEANING[code]} for code in codes}


#: What any API route may answer, documented once for all of them (``create_app``): an
#: unreadable body, not signed in, not allowed (or no CSRF token), invalid input, the
#: database unreachable.
COMMON_REFUSALS = refusals(400, 401, 403, 422, 503)


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def refusal(
    request: Request,
    status: int,
    message: str,
    problems: Iterable[ProblemOut] = (),
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> Response:
    """An :class:`ErrorOut` for the API (English), the error page for a page (in its
    language: a message marked with ``N_`` is translated, others are shown as they are)."""
    if is_api(request):
        body = ErrorOut(detail=message % params if params else message, problems=list(problems))
        return JSONResponse(body.model_dump(), status_code=status, headers=headers)
    viewer = getattr(request.state, "viewer", None)
    if viewer is None and status != 503:
        viewer = _signed_in(request)
    shown = page_gettext(request)(message)
    shown = shown % params if params else shown
    page = render(request, "error.html", viewer, status, status=status, message=shown)
    page.headers.update(headers or {})
    return page


def _signed_in(request: Request) -> Viewer | None:
    """Who is signed in, for an error page of a request that never got as far as loading
    its viewer (no such route, a bug before the guard): so the page keeps the
    navigation. Read only (the session's sliding expiry is not written) and best effort."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        with Session(engine_of(request)) as session:  # never committed
            return cookie_viewer(request, session)
    except Exception:  # an error page must render whatever else is broken
        return None


def validation_problems(exc: RequestValidationError) -> list[ProblemOut]:
    """One problem per invalid value, located (``query.page``, ``body.turn_corrections.0``).
    The rejected input itself is not echoed: it may be personal data."""
    return [
        ProblemOut(field=".".join(str(part) for part in e.get("loc", ())), message=e["msg"])
        for e in exc.errors()
    ]


class _OutageLog:
    """Warns when requests start failing for an unreachable database, then at most once
    per ``every_s`` while they keep failing (a polling dashboard would flood the log)."""

    def __init__(self, every_s: float = OUTAGE_LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._last: float | None = None
        self._lock = threading.Lock()

    def __call__(self, request: Request, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            quiet = self._last is not None and now - self._last < self.every_s
            if not quiet:
                self._last = now
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "database unreachable, answering 503 (%s %s): %s",
            request.method,
            request.url.path,
            describe(exc),
        )


def install(app: FastAPI) -> None:
    """Answer every refusal in the shapes above."""

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if is_api(request):
            return refusal(request, 401, str(exc) or N_("sign in first"))
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        # audited by the guard, in the request's own transaction (bot.web.deps.require)
        return refusal(
            request, 403, N_("your role may not do this (%(permission)s)"),
            params={"permission": exc.permission},
        )  # fmt: skip

    @app.exception_handler(ServiceRefusal)
    async def _service(request: Request, exc: ServiceRefusal) -> Response:
        if is_api(request):
            problems = [problem_out(p) for p in exc.problems]
            return refusal(request, exc.status, exc.message, problems)
        message = exc.shown(page_gettext(request))
        return refusal(request, exc.status, message)

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, _exc: CsrfError) -> Response:
        return refusal(request, 403, N_("missing or wrong CSRF token: reload the page"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (204, 304):  # no body allowed
            return Response(status_code=exc.status_code, headers=exc.headers)
        detail = {404: N_("Not Found"), 405: N_("Method Not Allowed")}.get(exc.status_code)
        message = detail if detail == exc.detail else str(exc.detail)
        return refusal(request, exc.status_code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = validation_problems(exc)
        where = "; ".join(f"{p.field}: {p.message}" for p in problems[:3])
        return refusal(request, 422, f"invalid request: {where}", problems)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        # Starlette's last resort (it re-raises afterwards, so the server logs the
        # traceback): answered in the request's shape, the page with the navigation,
        # never with the exception's text.
        return refusal(request, 500, N_("something went wrong on our side; it has been logged"))

    outage_log = _OutageLog()

    @app.exception_handler(sa.exc.DBAPIError)
    async def _database(request: Request, exc: sa.exc.DBAPIError) -> Response:
        if not is_unreachable(exc):
            raise exc  # a bug, not an outage: a 500 as before
        outage_log(request, exc)
        return refusal(
            request,
            503,
            N_("the database is unreachable; try again shortly"),
            headers={"Retry-After": str(DB_RETRY_AFTER_S)},
        )
