"""The dashboard application: ``create_app(settings)`` -> a FastAPI app.

Server-rendered pages (Jinja2, a little vanilla JS, assets served from the package) and
a JSON API under ``/api/v1`` with OpenAPI docs at ``/api/docs``; both behind the same
login. Refusals are answered by :mod:`bot.web.errors` (JSON for the API, the error page
for pages). See ``docs/dashboard.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine

from bot.settings import Settings
from bot.store import links
from bot.store.models import utcnow
from bot.web import api_docs, errors
from bot.web.feedback_cache import FeedbackCache
from bot.web.monitor_cache import MonitorCache
from bot.web.nul_guard import RefuseNul
from bot.web.roles import Permission, allowed
from bot.web.snapshots import Snapshots

HERE = Path(__file__).resolve().parent


def templates(zone: ZoneInfo | None = None) -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.add_extension("jinja2.ext.i18n")
    # The gettext callables come with each page's context (bot.web.pages.render), in the
    # request's language; these English ones serve templates rendered without one.
    t.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    t.env.globals["Permission"] = Permission
    t.env.globals["allowed"] = allowed
    zone = zone or ZoneInfo("Asia/Shanghai")
    t.env.globals["timezone_name"] = str(zone)
    return t


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    clock: Callable[[], dt.datetime] = utcnow,
) -> FastAPI:
    from bot.store.db import make_engine
    from bot.web.routes import (
        admin_api,
        audit_log,
        auth,
        calls,
        campaigns_api,
        feedback,
        home,
        monitor,
        review,
        workspace,
    )
    from bot.web.routes.network import router as network_router
    from bot.web.routes.ops import router as ops_router

    app = FastAPI(
        title="Call investigation dashboard",
        docs_url=None,  # served from the package, not a CDN: bot.web.api_docs
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
    app.state.monitor_cache = MonitorCache(
        app.state.engine,
        fresh_s=settings.web.monitor_fresh_s,
        max_stale_s=settings.web.monitor_max_stale_s,
    )
    app.state.groups_cache = Snapshots(app.state.engine, links.GROUPS_MAX_AGE_S)
    app.state.templates = templates(settings.web.zone)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    routers = (auth, home, calls, review, audit_log, monitor, feedback, workspace)
    for module in (*routers, admin_api, campaigns_api):
        app.include_router(module.router, responses=errors.COMMON_REFUSALS)
    app.include_router(ops_router)  # probes and metrics: no session, no refusals
    app.include_router(network_router, responses=errors.COMMON_REFUSALS)  # the accounts' network
    api_docs.install(app)
    errors.install(app)
    app.add_middleware(RefuseNul)
    return app
