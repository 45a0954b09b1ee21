"""Probes and metrics for operators: ``/healthz``, ``/readyz`` and ``/metrics``.

None of them needs a browser session: a load balancer, Kubernetes and Prometheus call
them. They are not part of the JSON API, so not in its OpenAPI document (whose every
operation but signing in needs a session). ``/metrics`` asks for
``Authorization: Bearer <web.metrics_token>`` when a token is configured. See
``docs/operations.md``.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from bot import metrics
from bot.store.db import database_answers
from bot.web.deps import engine_of, web_settings

router = APIRouter(tags=["operations"])

#: How long ``/readyz`` waits for the database before calling it unreachable.
READY_TIMEOUT_S = 2.0


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ok", "unavailable"]
    #: Each check: ``ok``, or what failed (no addresses or credentials).
    checks: dict[str, str]


@router.get("/healthz", response_model=HealthOut, include_in_schema=False)
async def healthz() -> HealthOut:
    """The process is up and answering (touches nothing else)."""
    return HealthOut(status="ok")


async def database_check(engine: Engine, timeout_s: float = READY_TIMEOUT_S) -> str:
    """``ok``, or why the database did not answer ``SELECT 1`` within ``timeout_s``
    (:func:`bot.store.db.database_answers`, off the event loop)."""
    return await asyncio.to_thread(database_answers, engine, timeout_s)


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "A check failed"}},
    include_in_schema=False,
)
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers."""
    checks = {"database": await database_check(engine_of(request))}
    ok = all(v == "ok" for v in checks.values())
    body = ReadyOut(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics_text(request: Request) -> Response:
    """Prometheus text exposition: this process's (or, in multi-process mode, every
    process's) events and the database backlogs."""
    token = web_settings(request).metrics_token.get_secret_value()
    if not metrics.bearer_ok(request.headers.get("authorization"), token):
        return PlainTextResponse(
            "metrics need Authorization: Bearer <token>\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = metrics.render(engine_of(request), request.app.state.clock)
    return Response(body, media_type=metrics.CONTENT_TYPE)
