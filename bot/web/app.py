"""The dashboard application: ``create_app(settings)`` -> a FastAPI app.

Server-rendered pages (Jinja2, a little vanilla JS, assets served from the package) and
a JSON API under ``/api/v1`` with OpenAPI docs at ``/api/docs``; both behind the same
login. See ``docs/dashboard.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.settings import Settings
from bot.store.models import utcnow
from bot.web.audit import audit
from bot.web.deps import CsrfError, Forbidden, NotSignedIn
from bot.web.feedback_cache import FeedbackCache
from bot.web.roles import Permission, allowed

HERE = Path(__file__).resolve().parent
API_PREFIX = "/api/"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.globals["Permission"] = Permission
    t.env.globals["allowed"] = allowed
    return t


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    clock: Callable[[], dt.datetime] = utcnow,
) -> FastAPI:
    from bot.store.db import make_engine
    from bot.web.routes import audit_log, auth, calls, feedback, home, monitor, review, workspace

    app = FastAPI(
        title="Call investigation dashboard",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.web = settings.web
    app.state.engine = engine or make_engine(settings.db_url)
    app.state.clock = clock
    app.state.feedback_cache = FeedbackCache(
        app.state.engine, max_stale_s=settings.web.feedback_max_stale_s
    )
    app.state.templates = templates()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (auth, home, calls, review, audit_log, monitor, feedback, workspace):
        app.include_router(module.router)
    _error_handlers(app)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        viewer = getattr(request.state, "viewer", None)
        with Session(app.state.engine) as session:
            audit(
                session,
                viewer.username if viewer else "?",
                "access_denied",
                "route",
                request.url.path,
                method=request.method,
                permission=exc.permission,
            )
            session.commit()
        return _refusal(request, 403, f"your role may not do this ({exc.permission})")

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, _exc: CsrfError) -> Response:
        return _refusal(request, 403, "missing or wrong CSRF token: reload the page")


def _refusal(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    page: Any = request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )
    return page  # type: ignore[no-any-return]
