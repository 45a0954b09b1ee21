"""Feedback: how often reviewers agree with the bot, per script, script step, scoring
rule and intent, and week by week; corrected turns exported as training data for the
intent model and the answer-reading model.

Reads the latest verdict per review item (:mod:`bot.web.stats`); the export is the only
thing here that writes, and only its audit event.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlmodel import Session

from bot.web import charts
from bot.web.audit import audit
from bot.web.deps import DB, Viewer, clock, engine_of, require
from bot.web.feedback_cache import FeedbackCache
from bot.web.pages import page_gettext, render
from bot.web.roles import Permission
from bot.web.stats import FeedbackOut, corrected_turn_count, reading_examples, training_examples

router = APIRouter()
MAY_VIEW_FEEDBACK = require(Permission.VIEW_FEEDBACK)
DAYS = Query(90, ge=1, le=3650, description="only verdicts of the last N days")


def feedback_charts(data: FeedbackOut, _: Callable[[str], str] = str) -> dict[str, Any]:
    """The page's charts, their words in the page's language (``_``: its gettext)."""
    weeks = [w.week.strftime("%m-%d") for w in data.by_week]
    return {
        "weekly": charts.line_chart(
            weeks,
            [(_("agreement"), [w.rate for w in data.by_week])],
            title=_("Agreement rate per week (week starting)"),
            fmt=charts.percent,
            max_value=1.0,
        ),
        "reviews": charts.bar_chart(
            [(w.week.strftime("%m-%d"), float(w.total)) for w in data.by_week],
            title=_("Verdicts per week"),
        ),
    }


def _figures(request: Request, session: Session, days: int) -> FeedbackOut:
    cache: FeedbackCache = request.app.state.feedback_cache
    return cache.get(session, clock(request), days)


@router.get("/feedback", response_class=HTMLResponse, include_in_schema=False)
def feedback_page(
    request: Request,
    days: int = DAYS,
    who: Viewer = Depends(MAY_VIEW_FEEDBACK),
    session: Session = DB,
) -> HTMLResponse:
    data = _figures(request, session, days)
    speak = page_gettext(request)
    drawn = feedback_charts(data, speak)
    return render(request, "feedback.html", who, data=data, days=days, charts=drawn)


@router.get("/api/v1/feedback", response_model=FeedbackOut, tags=["feedback"])
def api_feedback(
    request: Request,
    days: int = DAYS,
    _who: Viewer = Depends(MAY_VIEW_FEEDBACK),
    session: Session = DB,
) -> FeedbackOut:
    """Agreement rates per script, script step, scoring rule, intent and week, worst
    first (from the latest verdict on each review item of the last ``days`` days; the
    period starts at a whole hour). ``generated_at`` says when the figures were computed:
    after new verdicts they may be up to ``web.feedback_max_stale_s`` old while fresh
    ones are computed."""
    return _figures(request, session, days)


def _export(
    request: Request,
    who: Viewer,
    session: Session,
    days: int,
    name: str,
    rows: Callable[[Session, dt.datetime, int], Iterable[dict[str, Any]]],
) -> StreamingResponse:
    """Stream ``rows`` as JSON lines (a download named ``name-YYYYMMDD.jsonl``), audited
    as ``training_data_exported``."""
    now = clock(request)
    count = corrected_turn_count(session, now, days)
    audit(
        session, who.username, "training_data_exported", "feedback", "", days=days, rows=count,
        kind=name,
    )  # fmt: skip
    engine = engine_of(request)

    def lines() -> Iterator[str]:
        with Session(engine) as s:
            for row in rows(s, now, days):
                yield json.dumps(row, ensure_ascii=False) + "\n"

    stamp = now.strftime("%Y%m%d")
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.jsonl"'},
    )


def _intent_rows(s: Session, now: dt.datetime, days: int) -> Iterator[dict[str, Any]]:
    for ex in training_examples(s, now, days):
        yield {"topic": ex.topic, "text": ex.text, "intent": ex.intent}


#: How the exports are documented: JSON lines, not a JSON document.
JSONL: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "one JSON object per line",
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


def _exported(path: str) -> Callable[[Callable[..., StreamingResponse]], Any]:
    """Serve an export twice: for the feedback page's download link (refused with the
    error page or the login page, left out of the OpenAPI document) and under
    ``/api/v1`` for scripts (refused with JSON)."""

    def register(endpoint: Callable[..., StreamingResponse]) -> Any:
        router.get(path, include_in_schema=False)(endpoint)
        return router.get(
            "/api/v1" + path, tags=["feedback"], response_class=StreamingResponse, responses=JSONL
        )(endpoint)

    return register


@_exported("/feedback/training.jsonl")
def training_export(
    request: Request,
    days: int = DAYS,
    who: Viewer = Depends(MAY_VIEW_FEEDBACK),
    session: Session = DB,
) -> StreamingResponse:
    """Corrected callee turns as intent training data, one JSON object per line in the
    corpus's columns (``topic``, ``text``, ``intent``; see ``nlu/intent/corpus``), the
    text PII-masked. Audited as ``training_data_exported``."""
    return _export(request, who, session, days, "intent-corrections", _intent_rows)


@_exported("/feedback/reading.jsonl")
def reading_export(
    request: Request,
    days: int = DAYS,
    who: Viewer = Depends(MAY_VIEW_FEEDBACK),
    session: Session = DB,
) -> StreamingResponse:
    """Corrected callee turns as answer-reading training data in the corpus format of
    ``nlu/reading/corpus`` (the reviewer's reading where given, else the stored one; text
    PII-masked): ``bot nlu train --feedback FILE`` trains on it. Audited."""
    return _export(request, who, session, days, "reading-corrections", reading_examples)
