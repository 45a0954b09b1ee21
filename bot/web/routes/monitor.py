"""The campaign monitor: queue, outcomes, dispositions, connect rate, call length, turn
latency, failures, calls per hour and alerts, per campaign and overall; a full-screen
"big screen" view that reloads itself; the same figures as JSON.

All figures are SQL aggregates (:mod:`bot.web.stats`); nothing here changes state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlmodel import Session

from bot.web import charts
from bot.web.config import MonitorThresholds
from bot.web.deps import DB, Viewer, clock, require, web_settings
from bot.web.errors import refusals
from bot.web.i18n import N_
from bot.web.labels import label
from bot.web.localtime import to_local
from bot.web.monitor_cache import MonitorCache
from bot.web.pages import page_gettext, render
from bot.web.roles import Permission
from bot.web.stats import MONITOR_DAYS, MonitorOut, monitor

__all__ = ["MonitorThresholds", "router"]

router = APIRouter()
MAY_VIEW_MONITOR = require(Permission.VIEW_MONITOR)
#: Seconds between reloads of the big screen, and between refreshes of the monitor page.
SCREEN_REFRESH_S = 15
PAGE_REFRESH_S = 30
QUEUE_SERIES = (N_("queued"), N_("in progress"), N_("done"), N_("cancelled"))


def thresholds_of(request: Request) -> MonitorThresholds:
    """``settings.web.monitor`` when the settings have it, else the defaults."""
    web = getattr(request.app.state.settings, "web", None)
    found = getattr(web, "monitor", None)
    if isinstance(found, MonitorThresholds):
        return found
    if isinstance(found, BaseModel):
        return MonitorThresholds.model_validate(found.model_dump())
    if isinstance(found, dict):
        return MonitorThresholds.model_validate(found)
    return MonitorThresholds()


#: ``?days=N``: the period the figures count (0: all time); the default is a week.
DAYS = Query(
    MONITOR_DAYS, ge=0, le=3650, description="figures of calls started in the last N days (0: ever)"
)


def _figures(request: Request, session: Session, campaign: str | None, days: int) -> MonitorOut:
    """The figures, shared with other views of the same campaign and period for
    ``web.monitor_fresh_s`` (:mod:`bot.web.monitor_cache`)."""
    thresholds, name, period = thresholds_of(request), campaign or None, days or None
    cache: MonitorCache = request.app.state.monitor_cache
    found = cache.get(
        session,
        (name, period),
        lambda s, now: monitor(s, now, thresholds, name, days=period),
        now=lambda: clock(request),
    )
    if found is None:
        raise HTTPException(404, f"no campaign named {campaign!r}")
    return found


def tile_levels(data: MonitorOut) -> dict[str, str]:
    """``ok`` / ``warn`` / ``bad`` for the figures that have thresholds, so that the tiles
    are coloured as the alerts judge them (warn: within a fifth of the limit)."""
    t, recent = data.thresholds, data.overall.recent

    def high(rate: float | None, limit: float) -> str:
        if rate is None or recent.calls < t.min_calls:
            return "none"
        return "bad" if rate >= limit else "warn" if rate >= 0.8 * limit else "ok"

    def low(rate: float | None, floor: float) -> str:
        if rate is None or recent.calls < t.min_calls:
            return "none"
        return "bad" if rate < floor else "warn" if rate < 2 * floor else "ok"

    return {
        "failure_rate": high(recent.failure_rate, t.failure_rate),
        "refusal_rate": high(recent.refusal_rate, t.refusal_rate),
        "connect_rate": low(recent.connect_rate, t.connect_rate_min),
    }


def _figures_page(
    request: Request,
    who: Viewer,
    session: Session,
    campaign: str | None,
    days: int,
    template: str,
    refresh_s: int = PAGE_REFRESH_S,
    **context: Any,
) -> HTMLResponse:
    """A monitor page: ``template`` with the figures (``data``), their ``charts``, the
    campaigns to pick from (``names``: all of them on the overall view, none on one
    campaign's) and ``context``; or the error page (404) for a campaign that does not
    exist."""
    try:
        data = _figures(request, session, campaign, days)
    except HTTPException as exc:
        return render(request, "error.html", who, 404, status=404, message=exc.detail)
    names = [c.name for c in data.campaigns] if campaign is None else []
    speak = page_gettext(request)
    drawn = monitor_charts(data, web_settings(request).zone, speak)
    return render(
        request, template, who, data=data, charts=drawn,
        names=names, days=days, levels=tile_levels(data), refresh_s=refresh_s,
        **context,
    )  # fmt: skip


def monitor_charts(
    data: MonitorOut, zone: ZoneInfo, _: Callable[[str], str] = str
) -> dict[str, Any]:
    """The page's SVG charts, hours in the team's time zone, words in the page's
    language (``_``: its gettext)."""
    overall = data.overall.figures

    def named(kind: str, counts: dict[str, int]) -> list[tuple[str, float]]:
        return [(label(kind, value, _), float(n)) for value, n in counts.items()]

    hours = [to_local(h.hour, zone).strftime("%H:%M") for h in data.hourly]
    return {
        "queue": charts.stacked_bar(
            [
                (c.name, [c.queue.queued, c.queue.in_progress, c.queue.done, c.queue.cancelled])
                for c in data.campaigns
            ],
            [_(s) for s in QUEUE_SERIES],
            title=_("Work items per campaign"),
        ),
        "outcomes": charts.bar_chart(named("outcome", overall.outcomes), title=_("Outcomes")),
        "dispositions": charts.bar_chart(
            named("disposition", overall.dispositions), title=_("Dispositions")
        ),
        "hourly": charts.line_chart(
            hours,
            [
                (_("calls"), [float(h.calls) for h in data.hourly]),
                (_("failed"), [float(h.failed) for h in data.hourly]),
            ],
            title=_("Calls per hour, last 24 hours (%(zone)s)") % {"zone": zone},
            every=3,
        ),
        "spark": charts.sparkline(
            [float(h.calls) for h in data.hourly], title=_("Calls per hour"), width=240, height=48
        ),
    }


@router.get("/monitor", response_class=HTMLResponse, include_in_schema=False)
def monitor_page(
    request: Request,
    campaign: str | None = Query(None, max_length=100),
    days: int = DAYS,
    who: Viewer = Depends(MAY_VIEW_MONITOR),
    session: Session = DB,
) -> HTMLResponse:
    return _figures_page(request, who, session, campaign, days, "monitor.html")


@router.get("/monitor/screen", response_class=HTMLResponse, include_in_schema=False)
def monitor_screen(
    request: Request,
    campaign: str | None = Query(None, max_length=100),
    days: int = DAYS,
    who: Viewer = Depends(MAY_VIEW_MONITOR),
    session: Session = DB,
) -> HTMLResponse:
    return _figures_page(
        request, who, session, campaign, days, "monitor_screen.html", SCREEN_REFRESH_S
    )


@router.get("/api/v1/monitor", response_model=MonitorOut, tags=["monitor"], responses=refusals(404))
def api_monitor(
    request: Request,
    campaign: str | None = Query(None, max_length=100, description="campaign name"),
    days: int = DAYS,
    _who: Viewer = Depends(MAY_VIEW_MONITOR),
    session: Session = DB,
) -> MonitorOut:
    """Queue, outcomes, dispositions, connect rate, call length, turn latency, failures,
    calls per hour (last 24 h) and alerts: overall and per campaign (or one campaign).
    Queues are counted as they stand; the rest counts calls started in the period."""
    return _figures(request, session, campaign, days)
