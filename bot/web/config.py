"""Web dashboard settings (nested into :class:`bot.settings.Settings` as ``settings.web``).

Environment variables follow the nesting: ``BOT_WEB__PORT=8000``,
``BOT_WEB__SECURE_COOKIES=false`` (plain-HTTP development only) ...
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator

#: Addresses only this machine reaches: browsers keep ``Secure`` cookies over plain HTTP
#: there, so neither the login page nor ``bot web`` warns about them.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class MonitorThresholds(BaseModel):
    """When the monitor raises an alert: the failure or refusal rate over the last
    ``window`` finished calls (of a campaign, or overall) reaches its threshold, or the
    connect rate falls below ``connect_rate_min``, once at least ``min_calls`` calls are
    in the window (a handful of calls is not a trend); or a running campaign is stalled:
    work claimable for ``stall_minutes`` and no call started in that time. The Prometheus
    rules in ``dashboards/prometheus/alerts.yml`` use the same values."""

    failure_rate: float = Field(0.10, ge=0, le=1)
    refusal_rate: float = Field(0.30, ge=0, le=1)
    connect_rate_min: float = Field(0.05, ge=0, le=1)
    stall_minutes: int = Field(30, ge=1, le=24 * 60)
    window: int = Field(200, ge=1, le=100_000)
    min_calls: int = Field(20, ge=1)


class WebSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    #: Idle minutes after which a login session expires, and its absolute lifetime.
    session_idle_minutes: int = Field(30, ge=1)
    session_max_hours: int = Field(12, ge=1)
    #: Failed logins in a row that lock an account, and for how long.
    lockout_after: int = Field(5, ge=1)
    lockout_minutes: int = Field(15, ge=1)
    #: Mark cookies ``Secure`` (HTTPS only). Browsers also accept them on
    #: http://127.0.0.1 and http://localhost, so tests keep this on.
    secure_cookies: bool = True
    #: Rows per page in lists.
    page_size: int = Field(50, ge=5, le=500)
    #: Feedback figures may be served this many seconds old while they are recomputed
    #: in the background after new verdicts (0: always recompute on change).
    feedback_max_stale_s: float = Field(60.0, ge=0)
    #: The monitor's figures are shared by every view for this many seconds (0: each
    #: view computes them), then served up to ``monitor_max_stale_s`` old while one
    #: background thread recomputes them.
    monitor_fresh_s: float = Field(5.0, ge=0)
    monitor_max_stale_s: float = Field(30.0, ge=0)
    #: The dashboard's language when neither ``?lang=``, its cookie nor the browser
    #: chooses one: ``zh_CN`` (Simplified Chinese) or ``en``.
    default_locale: Literal["zh_CN", "en"] = "zh_CN"
    #: The team's time zone: pages and charts show times in it (the database keeps UTC).
    timezone: str = "Asia/Shanghai"
    #: A review item older than this is overdue (marked in the queue, counted on the
    #: monitor): the team's service level for looking at a suspicious call.
    review_sla_hours: float = Field(24.0, gt=0, le=24 * 90)
    #: Campaign monitor alerts (``BOT_WEB__MONITOR__FAILURE_RATE`` ...).
    monitor: MonitorThresholds = Field(default_factory=MonitorThresholds)
    #: Bearer token Prometheus must send to read ``/metrics``
    #: (``Authorization: Bearer <token>``); empty = open to whoever reaches the listen
    #: address (see docs/operations.md).
    metrics_token: SecretStr = SecretStr("")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def review_sla(self) -> dt.timedelta:
        return dt.timedelta(hours=self.review_sla_hours)
