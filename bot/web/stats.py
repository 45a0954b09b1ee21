"""SQL aggregations behind the campaign monitor and the feedback statistics.

Every figure is computed by the database (``GROUP BY``, ordered-set aggregates, window
functions, ``LIMIT``) so a page costs a handful of queries that each return a few rows,
whatever the number of calls. The queries are SQLAlchemy Core expressions over the
schema's tables (:mod:`bot.web.stats_sql` holds the aliases and the few pieces where
SQLite and PostgreSQL differ); no SQL is built from strings. Percentiles differ by
engine as whole queries: ``percentile_cont`` on PostgreSQL, two rows picked by
``ROW_NUMBER()`` elsewhere, interpolated the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field, computed_field
from sqlalchemy.sql.selectable import NamedFromClause
from sqlmodel import Session, col

from bot.campaign.due import claimable_throughout
from bot.core.masking import mask_text
from bot.core.vocab import NOT_CONNECTED
from bot.store.models import CallRow, CampaignAccountRow
from bot.web.config import MonitorThresholds
from bot.web.stats_sql import (
    CA,
    CAMPAIGN,
    QUEUE,
    RA,
    C,
    Reviewed,
    T,
    count_if,
    hour_bucket,
    is_pg,
    json_elements,
    json_text,
    rate_sums,
    reviewed,
    week_start,
)

#: Outcomes of calls nobody answered: the rest count as connected.
#: Work-item states of the dial queue (see ``bot.campaign.queue``).
QUEUE_STATES = ("queued", "in_progress", "done", "cancelled")


# -- response models (shared by the pages and the JSON API) -----------------------------


class QueueCounts(BaseModel):
    queued: int = 0
    in_progress: int = 0
    #: In progress, but the worker's lease has expired (it died; recovery will requeue).
    stale: int = 0
    done: int = 0
    cancelled: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return self.queued + self.in_progress + self.done + self.cancelled


class Percentiles(BaseModel):
    p50: float | None = None
    p95: float | None = None


class CallFigures(BaseModel):
    """Finished calls (those with an outcome)."""

    calls: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)
    dispositions: dict[str, int] = Field(default_factory=dict)
    connect_rate: float | None = None
    avg_duration_s: float | None = None
    failures: int = 0
    #: Across calls: the median and 95th percentile of each call's median turn latency,
    #: and of each call's 95th-percentile turn latency (voice calls only).
    latency_p50_ms: Percentiles = Field(default_factory=Percentiles)
    latency_p95_ms: Percentiles = Field(default_factory=Percentiles)


class WindowRates(BaseModel):
    """The last ``calls`` finished calls (at most the threshold window)."""

    calls: int = 0
    failed: int = 0
    refused: int = 0
    #: Calls that reached the line (any outcome but :data:`NOT_CONNECTED`).
    connected: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.calls if self.calls else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def refusal_rate(self) -> float | None:
        return self.refused / self.calls if self.calls else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def connect_rate(self) -> float | None:
        return self.connected / self.calls if self.calls else None


class Alert(BaseModel):
    campaign: str | None = Field(None, description="null: all campaigns together")
    kind: str = Field(description="failure | refusal | connect | stalled")
    rate: float
    threshold: float
    window_calls: int = Field(description="calls in the window; for stalled: calls waiting")
    message: str = Field(description="in English; pages show it in their language")


class FailureReason(BaseModel):
    ended_by: str | None
    error: str | None
    count: int


class HourCount(BaseModel):
    hour: dt.datetime
    calls: int
    failed: int


class CampaignStats(BaseModel):
    id: int | None
    name: str
    state: str
    queue: QueueCounts
    figures: CallFigures
    recent: WindowRates
    alerts: list[Alert] = Field(default_factory=list)


class MonitorOut(BaseModel):
    generated_at: dt.datetime
    campaign: str | None = Field(None, description="the campaign filter, if any")
    since: dt.datetime | None = Field(
        None, description="figures count calls started since then (null: ever)"
    )
    thresholds: MonitorThresholds
    overall: CampaignStats
    campaigns: list[CampaignStats]
    alerts: list[Alert]
    hourly: list[HourCount] = Field(description="calls started per hour, last 24 hours")
    failure_reasons: list[FailureReason]


class RateRow(BaseModel):
    """One line of a feedback table: ``agreed`` of ``total`` (reviews or turns)."""

    key: str
    label: str = ""
    total: int
    agreed: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> float | None:
        return self.agreed / self.total if self.total else None


class WeekRate(BaseModel):
    week: dt.date
    total: int
    agreed: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> float | None:
        return self.agreed / self.total if self.total else None


class FeedbackOut(BaseModel):
    generated_at: dt.datetime
    since: dt.datetime
    verdicts: int
    agreed: int
    corrected_turns: int
    by_script: list[RateRow] = Field(description="verdicts that agreed, per script@version")
    by_step: list[RateRow] = Field(
        description="reviewed callee turns left uncorrected, per script step (script:node)"
    )
    by_rule: list[RateRow] = Field(description="verdicts that agreed, per fired scoring rule")
    by_intent: list[RateRow] = Field(
        description="reviewed callee turns whose predicted intent was not corrected"
    )
    by_week: list[WeekRate]


# -- helpers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which calls ``c`` a monitor figure counts: one campaign's or all, started since
    ``since`` (``None``: ever)."""

    campaign_id: int | None = None
    since: dt.datetime | None = None

    def source(self, *, grouped: bool = False) -> sa.FromClause:
        """The calls, joined to their work items ``ca`` when needed to restrict or group
        by campaign."""
        if self.campaign_id is None and not grouped:
            return C
        return C.outerjoin(CA, CA.c.id == C.c.campaign_account_id)

    @property
    def where(self) -> list[sa.ColumnElement[bool]]:
        conds = []
        if self.campaign_id is not None:
            conds.append(CA.c.campaign_id == self.campaign_id)
        if self.since is not None:
            conds.append(C.c.started_at >= self.since)
        return conds


def interpolate(pairs: dict[int, float], n: int, p: float) -> float | None:
    """Linear-interpolated percentile (as ``percentile_cont`` and numpy) from the values
    at the two ranks around ``p * (n - 1)``."""
    if n == 0:
        return None
    pos = p * (n - 1)
    lo = int(pos)
    v_lo = pairs[lo]
    v_hi = pairs.get(lo + 1, v_lo)
    return v_lo + (v_hi - v_lo) * (pos - lo)


# -- campaign monitor -------------------------------------------------------------------


@dataclass
class _Campaign:
    id: int
    name: str
    state: str


def campaigns(session: Session, name: str | None = None) -> list[_Campaign]:
    """Running and paused campaigns first, then the newest."""
    cp = CAMPAIGN
    q = sa.select(cp.c.id, cp.c.name, cp.c.state).order_by(
        sa.case({"running": 0, "paused": 1}, value=cp.c.state, else_=2),
        cp.c.created_at.desc(),
        cp.c.id.desc(),
    )
    if name is not None:
        q = q.where(cp.c.name == name)
    return [_Campaign(r.id, r.name, r.state) for r in session.execute(q)]


def queue_counts(
    session: Session, now: dt.datetime, campaign_id: int | None = None
) -> dict[int, QueueCounts]:
    """Work items per campaign and state (expired leases counted apart). Two queries
    that each read an index alone: the states by ``(campaign_id, state)``, and the few
    live items' leases by ``(state, ...)`` (one query with the lease in a CASE read every
    row: 100 ms at 100,000 items on SQLite)."""
    ca = QUEUE
    mine = [ca.c.campaign_id == campaign_id] if campaign_id is not None else []
    n = sa.func.count().label("n")
    by_state = session.execute(
        sa.select(ca.c.campaign_id, ca.c.state, n)
        .where(*mine)
        .group_by(ca.c.campaign_id, ca.c.state)
    ).all()
    stale = session.execute(
        sa.select(ca.c.campaign_id, n)
        .where(ca.c.state == "in_progress", ca.c.lease_expires_at < now, *mine)
        .group_by(ca.c.campaign_id)
    ).all()
    out: dict[int, QueueCounts] = defaultdict(QueueCounts)
    for r in by_state:
        q = out[r.campaign_id]
        if r.state in QUEUE_STATES:
            setattr(q, r.state, getattr(q, r.state) + r.n)
    for r in stale:
        out[r.campaign_id].stale += r.n
    return dict(out)


#: Key under which figures of all calls together are returned.
ALL = -1


def call_figures(session: Session, scope: Scope = Scope()) -> dict[int | None, CallFigures]:
    """Outcomes, dispositions, connect rate, durations per campaign (key ``None``: calls
    without a campaign) and for all of them (key :data:`ALL`). One GROUP BY over
    finished calls, rolled up here."""
    rows = session.execute(
        sa.select(
            CA.c.campaign_id.label("cid"),
            C.c.outcome,
            C.c.disposition,
            sa.func.count().label("n"),
            sa.func.sum(C.c.duration_s).label("dur"),
            sa.func.count(C.c.duration_s).label("n_dur"),
        )
        .select_from(scope.source(grouped=True))
        .where(C.c.outcome.is_not(None), *scope.where)
        .group_by(CA.c.campaign_id, C.c.outcome, C.c.disposition)
    ).all()
    acc: dict[int | None, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "dur": 0.0, "n_dur": 0, "out": defaultdict(int), "disp": defaultdict(int)}
    )
    acc[ALL]  # all calls, even when there are none
    for r in rows:
        for a in (acc[r.cid], acc[ALL]):
            a["n"] += r.n
            a["dur"] += float(r.dur or 0)
            a["n_dur"] += r.n_dur
            a["out"][r.outcome] += r.n
            if r.disposition:
                a["disp"][r.disposition] += r.n
    return {cid: _figures(a) for cid, a in acc.items()}


def _figures(a: dict[str, Any]) -> CallFigures:
    n: int = a["n"]
    outcomes: dict[str, int] = dict(sorted(a["out"].items(), key=lambda kv: -kv[1]))
    connected = n - sum(outcomes.get(o, 0) for o in NOT_CONNECTED)
    return CallFigures(
        calls=n,
        outcomes=outcomes,
        dispositions=dict(sorted(a["disp"].items(), key=lambda kv: -kv[1])),
        connect_rate=connected / n if n else None,
        avg_duration_s=a["dur"] / a["n_dur"] if a["n_dur"] else None,
        failures=outcomes.get("failed", 0),
    )


LATENCY_COLUMNS = ("latency_p50_ms", "latency_p95_ms")
PCTS = (0.5, 0.95)


def latency_percentiles(
    session: Session, scope: Scope = Scope()
) -> dict[int | None, dict[str, Percentiles]]:
    """Median and p95, across calls, of each latency column: per campaign and for all
    calls (key :data:`ALL`)."""
    if is_pg(session):
        return _latency_pg(session, scope)
    return _latency_generic(session, scope)


def _latency_pg(session: Session, scope: Scope) -> dict[int | None, dict[str, Any]]:
    aggs = [
        sa.func.percentile_cont(p).within_group(C.c[column]).label(f"{column}_{int(p * 100)}")
        for column in LATENCY_COLUMNS
        for p in PCTS
    ]
    cid = sa.case((sa.func.grouping(CA.c.campaign_id) == 1, ALL), else_=CA.c.campaign_id)
    rows = session.execute(
        sa.select(cid.label("cid"), *aggs)
        .select_from(scope.source(grouped=True))
        .where(C.c.latency_p50_ms.is_not(None), *scope.where)
        .group_by(sa.func.grouping_sets(sa.tuple_(CA.c.campaign_id), sa.tuple_()))
    ).all()
    out: dict[int | None, dict[str, Any]] = {}
    for r in rows:
        m = r._mapping
        out[r.cid] = {
            col: Percentiles(p50=m[f"{col}_50"], p95=m[f"{col}_95"]) for col in LATENCY_COLUMNS
        }
    return out


def _latency_generic(session: Session, scope: Scope) -> dict[int | None, dict[str, Any]]:
    """Without percentile_cont: rank the values per group with ROW_NUMBER() and fetch
    only the two ranks around each percentile's position."""
    out: dict[int | None, dict[str, Any]] = defaultdict(dict)
    for column in LATENCY_COLUMNS:
        value = C.c[column]

        def values(
            group: sa.ColumnElement[Any], value: sa.ColumnElement[Any] = value
        ) -> sa.Select[Any]:
            return (
                sa.select(group.label("g"), value.label("v"))
                .select_from(scope.source(grouped=True))
                .where(value.is_not(None), *scope.where)
            )

        x = sa.union_all(values(CA.c.campaign_id), values(sa.literal(ALL))).cte("x")
        r = sa.select(
            x.c.g,
            x.c.v,
            (sa.func.row_number().over(partition_by=x.c.g, order_by=x.c.v) - 1).label("rn"),
            sa.func.count().over(partition_by=x.c.g).label("n"),
        ).cte("r")
        picks = []
        for p in PCTS:
            at = sa.cast(sa.literal(p) * (r.c.n - 1), sa.Integer)
            picks += [r.c.rn == at, r.c.rn == at + 1]
        rows = session.execute(sa.select(r.c.g, r.c.v, r.c.rn, r.c.n).where(sa.or_(*picks))).all()
        ranks: dict[int | None, dict[int, float]] = defaultdict(dict)
        sizes: dict[int | None, int] = {}
        for row in rows:
            ranks[row.g][row.rn] = float(row.v)
            sizes[row.g] = row.n
        for g, n in sizes.items():
            out[g][column] = Percentiles(
                p50=interpolate(ranks[g], n, 0.5), p95=interpolate(ranks[g], n, 0.95)
            )
    return dict(out)


def window_rates(session: Session, window: int, scope: Scope = Scope()) -> WindowRates:
    """Failed and refused calls among the last ``window`` finished calls in the scope
    (newest first by the (started_at, id) index: a short backward index scan)."""
    last = (
        sa.select(C.c.outcome)
        .select_from(scope.source())
        .where(C.c.outcome.is_not(None), *scope.where)
        .order_by(C.c.started_at.desc(), C.c.id.desc())
        .limit(window)
        .subquery("last_calls")
    )
    r = session.execute(
        sa.select(sa.func.count().label("n"), *rate_sums(last.c.outcome)).select_from(last)
    ).one()
    return WindowRates(calls=r.n, failed=r.failed, refused=r.refused, connected=r.connected)


def window_rates_by_campaign(
    session: Session, window: int, scope: Scope = Scope()
) -> dict[int, WindowRates]:
    """:func:`window_rates` of every campaign in one query (``ROW_NUMBER()`` per
    campaign) instead of one query per campaign."""
    newest_first = sa.func.row_number().over(
        partition_by=CA.c.campaign_id, order_by=(C.c.started_at.desc(), C.c.id.desc())
    )
    ranked = (
        sa.select(CA.c.campaign_id.label("g"), C.c.outcome, newest_first.label("rn"))
        .select_from(scope.source(grouped=True))
        .where(C.c.outcome.is_not(None), CA.c.campaign_id.is_not(None), *scope.where)
        .subquery("ranked")
    )
    rows = session.execute(
        sa.select(ranked.c.g, sa.func.count().label("n"), *rate_sums(ranked.c.outcome))
        .where(ranked.c.rn <= window)
        .group_by(ranked.c.g)
    ).all()
    return {
        r.g: WindowRates(calls=r.n, failed=r.failed, refused=r.refused, connected=r.connected)
        for r in rows
    }


def alerts_for(name: str | None, rates: WindowRates, t: MonitorThresholds) -> list[Alert]:
    """Alerts when a rate crosses its threshold over at least ``t.min_calls`` calls: the
    failure or refusal rate at or above its limit, the connect rate below its floor."""
    if rates.calls < t.min_calls:
        return []
    who = f"campaign {name}" if name else "all campaigns"
    found = []
    for kind, rate, limit, crossed in (
        ("failure", rates.failure_rate, t.failure_rate, operator.ge),
        ("refusal", rates.refusal_rate, t.refusal_rate, operator.ge),
        ("connect", rates.connect_rate, t.connect_rate_min, operator.lt),
    ):
        if rate is not None and crossed(rate, limit):
            side = "below" if crossed is operator.lt else "threshold"
            found.append(
                Alert(
                    campaign=name,
                    kind=kind,
                    rate=rate,
                    threshold=limit,
                    window_calls=rates.calls,
                    message=f"{who}: {kind} rate {rate:.0%} over the last {rates.calls} "
                    f"calls ({side} {limit:.0%})",
                )
            )
    return found


def stalled_alerts(
    session: Session, now: dt.datetime, t: MonitorThresholds, names: dict[int, str]
) -> list[Alert]:
    """A running campaign (of ``names``) whose work has been claimable for the last
    ``t.stall_minutes`` while none of its calls started in that time: no worker is
    taking it (none running, all stuck, or all on other campaigns)."""
    span = dt.timedelta(minutes=t.stall_minutes)
    waiting = {
        cid: n for cid, n in claimable_throughout(session, now, span).items() if cid in names
    }
    if not waiting:
        return []
    started = session.execute(
        sa.select(col(CampaignAccountRow.campaign_id))
        .join(CallRow, col(CallRow.campaign_account_id) == col(CampaignAccountRow.id))
        .where(
            col(CallRow.started_at) >= now - span,
            col(CampaignAccountRow.campaign_id).in_(list(waiting)),
        )
        .distinct()
    ).scalars()
    busy = set(started)
    return [
        Alert(
            campaign=names[cid],
            kind="stalled",
            rate=0.0,
            threshold=float(t.stall_minutes),
            window_calls=n,
            message=f"campaign {names[cid]}: {n} calls waiting for {t.stall_minutes} min "
            "and none started: is a worker running?",
        )
        for cid, n in sorted(waiting.items())
        if cid not in busy
    ]


def hourly_calls(
    session: Session, now: dt.datetime, campaign_id: int | None = None, hours: int = 24
) -> list[HourCount]:
    """Calls started in each of the last ``hours`` whole hours (the current one last)."""
    end = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=hours)
    scope = Scope(campaign_id, since=start)
    bucket = hour_bucket(session, C.c.started_at).label("h")
    rows = session.execute(
        sa.select(
            bucket, sa.func.count().label("n"), count_if(C.c.outcome == "failed").label("failed")
        )
        .select_from(scope.source())
        .where(C.c.started_at < end, *scope.where)
        .group_by(bucket)
    ).all()
    found = {r.h: (r.n, int(r.failed or 0)) for r in rows}
    out = []
    for i in range(hours):
        hour = start + dt.timedelta(hours=i)
        n, failed = found.get(hour.strftime("%Y-%m-%d %H"), (0, 0))
        out.append(HourCount(hour=hour, calls=n, failed=failed))
    return out


def failure_reasons(
    session: Session, scope: Scope = Scope(), limit: int = 5
) -> list[FailureReason]:
    """The commonest (ended_by, error) pairs of failed calls; errors are masked."""
    n = sa.func.count().label("n")
    rows = session.execute(
        sa.select(C.c.ended_by, C.c.error, n)
        .select_from(scope.source())
        .where(C.c.outcome == "failed", *scope.where)
        .group_by(C.c.ended_by, C.c.error)
        .order_by(n.desc(), C.c.ended_by)
        .limit(limit)
    ).all()
    return [
        FailureReason(ended_by=r.ended_by, error=mask_text(r.error) if r.error else None, count=r.n)
        for r in rows
    ]


#: The monitor's default period: figures of the calls started in the last week.
MONITOR_DAYS = 7


def monitor(
    session: Session,
    now: dt.datetime,
    thresholds: MonitorThresholds,
    campaign: str | None = None,
    days: int | None = MONITOR_DAYS,
) -> MonitorOut | None:
    """Everything the monitor shows; ``None`` if the named campaign does not exist.

    Queues are counted as they stand; outcomes, dispositions, durations, latency, failure
    reasons and the alert windows count the calls started in the last ``days`` days
    (``None``: ever), which keeps every query to a bounded slice of the call table."""
    found = campaigns(session, campaign)
    if campaign is not None and not found:
        return None
    cid = found[0].id if campaign is not None else None
    since = now - dt.timedelta(days=days) if days is not None else None
    scope = Scope(cid, since)
    queues = queue_counts(session, now, cid)
    figures = call_figures(session, scope)
    latency = latency_percentiles(session, scope)
    recent = window_rates_by_campaign(session, thresholds.window, scope)
    per_campaign = [_campaign_stats(c, queues, figures, latency, recent, thresholds) for c in found]
    if campaign is not None:
        overall = per_campaign[0]
    else:
        overall = CampaignStats(
            id=None,
            name="all campaigns",
            state="",
            queue=_sum_queues(queues.values()),
            figures=figures[ALL],
            recent=window_rates(session, thresholds.window, scope),
        )
        _add_latency(overall.figures, latency.get(ALL))
        overall.alerts = alerts_for(None, overall.recent, thresholds)
    stalled = stalled_alerts(
        session, now, thresholds, {c.id: c.name for c in found if c.state == "running"}
    )
    for c in per_campaign:
        c.alerts.extend(a for a in stalled if a.campaign == c.name)
    alerts = [*(overall.alerts if campaign is None else []), *_all_alerts(per_campaign)]
    return MonitorOut(
        generated_at=now,
        campaign=campaign,
        since=since,
        thresholds=thresholds,
        overall=overall,
        campaigns=per_campaign,
        alerts=alerts,
        hourly=hourly_calls(session, now, cid),
        failure_reasons=failure_reasons(session, scope),
    )


def _all_alerts(per_campaign: Iterable[CampaignStats]) -> Iterator[Alert]:
    for c in per_campaign:
        yield from c.alerts


def _campaign_stats(
    c: _Campaign,
    queues: dict[int, QueueCounts],
    figures: dict[int | None, CallFigures],
    latency: dict[int | None, dict[str, Percentiles]],
    recent: dict[int, WindowRates],
    thresholds: MonitorThresholds,
) -> CampaignStats:
    stats = CampaignStats(
        id=c.id,
        name=c.name,
        state=c.state,
        queue=queues.get(c.id, QueueCounts()),
        figures=figures.get(c.id, CallFigures()),
        recent=recent.get(c.id, WindowRates()),
    )
    _add_latency(stats.figures, latency.get(c.id))
    stats.alerts = alerts_for(c.name, stats.recent, thresholds)
    return stats


def _add_latency(figures: CallFigures, found: dict[str, Percentiles] | None) -> None:
    if found:
        figures.latency_p50_ms = found.get("latency_p50_ms", Percentiles())
        figures.latency_p95_ms = found.get("latency_p95_ms", Percentiles())


def _sum_queues(parts: Iterable[QueueCounts]) -> QueueCounts:
    total = QueueCounts()
    for q in parts:
        for name in (*QUEUE_STATES, "stale"):
            setattr(total, name, getattr(total, name) + getattr(q, name))
    return total


# -- feedback ---------------------------------------------------------------------------


def _rate_rows(rows: Iterable[sa.Row[Any]]) -> list[RateRow]:
    return _roll_up((str(r.key), str(r.label or ""), r.total, r.agreed) for r in rows)


def _worst_first(x: RateRow) -> tuple[float, int, str]:
    """Lowest agreement first; among equals, the most evidence first."""
    return (x.rate if x.rate is not None else 2.0, -x.total, x.key)


def feedback(
    session: Session, now: dt.datetime, days: int = 90, since: dt.datetime | None = None
) -> FeedbackOut:
    """Agreement of reviewers with the bot, from the latest verdict per review item given
    since ``since`` (default: ``days`` before ``now``).

    Three queries, each over the reviewed calls only: verdicts per (script, week) rolled
    up into the totals, the per-script and the per-week rates; reviewed callee turns per
    (script step, intent) rolled up into the per-step and per-intent rates; fired rules.
    Pages read it through :class:`bot.web.feedback_cache.FeedbackCache`."""
    since = since if since is not None else now - dt.timedelta(days=days)
    q = reviewed(session, since, materialized=True)
    verdicts = _verdict_groups(session, q)
    steps, intents = _turn_rates(session, q)
    return FeedbackOut(
        generated_at=now,
        since=since,
        verdicts=sum(r.total for r in verdicts),
        agreed=sum(int(r.agreed or 0) for r in verdicts),
        corrected_turns=verdicts[0].corrected if verdicts else 0,
        by_script=_roll_up((str(r.script), "", r.total, r.agreed) for r in verdicts),
        by_step=steps,
        by_rule=_by_rule(session, q),
        by_intent=intents,
        by_week=_weeks(verdicts),
    )


def _roll_up(parts: Iterable[tuple[str, str, int, int | None]]) -> list[RateRow]:
    """Sum (key, label, total, agreed) parts per key into rate rows, worst first."""
    acc: dict[str, tuple[str, int, int]] = {}
    for key, label, total, agreed in parts:
        had_label, had_total, had_agreed = acc.get(key, ("", 0, 0))
        acc[key] = (max(had_label, label), had_total + total, had_agreed + int(agreed or 0))
    return sorted(
        (
            RateRow(key=key, label=label, total=total, agreed=agreed)
            for key, (label, total, agreed) in acc.items()
        ),
        key=_worst_first,
    )


def _verdict_groups(session: Session, q: Reviewed) -> Sequence[sa.Row[Any]]:
    """Reviewed calls per (script@version, week): total and agreed; every row also
    carries the number of corrected turns."""
    r = q.r
    script = (
        sa.func.coalesce(r.c.script_id, "?")
        + "@v"
        + sa.func.coalesce(sa.cast(r.c.script_version, sa.Text), "?")
    ).label("script")
    week = week_start(session, r.c.created_at).label("week")
    corrected = sa.select(sa.func.count()).select_from(q.corr).scalar_subquery()
    return session.execute(
        sa.select(
            script,
            week,
            sa.func.count().label("total"),
            count_if(r.c.agree).label("agreed"),
            corrected.label("corrected"),
        ).group_by(script, week)
    ).all()


def _weeks(rows: Iterable[sa.Row[Any]]) -> list[WeekRate]:
    acc: dict[str, tuple[int, int]] = {}
    for r in rows:
        total, agreed = acc.get(r.week, (0, 0))
        acc[r.week] = (total + r.total, agreed + int(r.agreed or 0))
    return [
        WeekRate(week=dt.date.fromisoformat(week), total=total, agreed=agreed)
        for week, (total, agreed) in sorted(acc.items())
    ]


def _turn_rates(session: Session, q: Reviewed) -> tuple[list[RateRow], list[RateRow]]:
    """Reviewed callee turns in one pass: per step (script:node) any correction of the
    turn counts against it; per predicted intent only a corrected intent does."""
    r, co = q.r, q.co
    step = (sa.func.coalesce(r.c.script_id, "?") + ":" + T.c.node_id).label("step")
    rows = session.execute(
        sa.select(
            step,
            sa.func.max(T.c.topic).label("topic"),
            T.c.intent,
            sa.func.count().label("total"),
            sa.func.sum(sa.case((co.c.call_id.is_not(None), 0), else_=1)).label("step_ok"),
            sa.func.sum(
                sa.case((sa.and_(co.c.intent.is_not(None), co.c.intent != T.c.intent), 0), else_=1)
            ).label("intent_ok"),
        )
        .select_from(
            r.join(T, T.c.call_id == r.c.call_id).outerjoin(
                co, sa.and_(co.c.call_id == T.c.call_id, co.c.turn_idx == T.c.idx)
            )
        )
        .where(T.c.role == "callee")
        .group_by(step, T.c.intent)
    ).all()
    steps = _roll_up((r.step, r.topic or "", r.total, r.step_ok) for r in rows)
    intents = _roll_up((r.intent, "", r.total, r.intent_ok) for r in rows if r.intent)
    return steps, intents


def _by_rule(session: Session, q: Reviewed) -> list[RateRow]:
    r = q.r
    h = json_elements(session, RA.c.explanation, "h")
    fired = (
        sa.select(
            RA.c.call_id,
            r.c.agree,
            json_text(session, h, "feature").label("feature"),
            json_text(session, h, "description").label("description"),
        )
        .distinct()
        .select_from(RA.join(r, r.c.call_id == RA.c.call_id))
        .cte("fired")
    )
    f = fired.alias("f")
    return _rate_rows(
        session.execute(
            sa.select(
                f.c.feature.label("key"),
                sa.func.max(f.c.description).label("label"),
                sa.func.count().label("total"),
                count_if(f.c.agree).label("agreed"),
            ).group_by(f.c.feature)
        ).all()
    )


@dataclass(frozen=True)
class TrainingExample:
    topic: str
    text: str
    intent: str


def _corrected_of(co: NamedFromClause) -> sa.FromClause:
    """Corrections ``co`` joined to the stored turn ``t`` they correct."""
    return co.join(T, sa.and_(T.c.call_id == co.c.call_id, T.c.idx == co.c.turn_idx))


def corrected_turn_count(session: Session, now: dt.datetime, days: int) -> int:
    co = reviewed(session, now - dt.timedelta(days=days)).co
    n = session.execute(
        sa.select(sa.func.count().label("n"))
        .select_from(_corrected_of(co))
        .where(T.c.role == "callee", sa.func.coalesce(co.c.intent, T.c.intent).is_not(None))
    ).scalar_one()
    return int(n)


#: Columns (or conditions) of a corrected-turns query, given the corrections ``co``
#: (the stored turn is :data:`T`).
_Pick = Callable[[NamedFromClause], Sequence[sa.ColumnElement[Any]]]


def _corrected_turns(
    session: Session, now: dt.datetime, days: int, columns: _Pick, where: _Pick, batch: int
) -> Iterator[sa.Row[Any]]:
    """Corrected callee turns of the last ``days`` days (``co``: the correction, ``t``: the
    stored turn), ``columns`` selected besides the keys, in (verdict, turn) order, read
    ``batch`` at a time (keyset pagination)."""
    co = reviewed(session, now - dt.timedelta(days=days)).co
    v, i = sa.bindparam("v", type_=sa.Integer), sa.bindparam("i", type_=sa.Integer)
    stmt = (
        sa.select(co.c.verdict_id, co.c.turn_idx, T.c.topic, *columns(co))
        .select_from(_corrected_of(co))
        .where(
            T.c.role == "callee",
            *where(co),
            sa.or_(co.c.verdict_id > v, sa.and_(co.c.verdict_id == v, co.c.turn_idx > i)),
        )
        .order_by(co.c.verdict_id, co.c.turn_idx)
        .limit(batch)
    )
    after = (-1, -1)
    while True:
        rows = session.execute(stmt, {"v": after[0], "i": after[1]}).all()
        yield from rows
        if len(rows) < batch:
            return
        after = (rows[-1].verdict_id, rows[-1].turn_idx)


def _one_line(text: str) -> str:
    return " ".join(mask_text(text).split())


def training_examples(
    session: Session, now: dt.datetime, days: int, batch: int = 1000
) -> Iterator[TrainingExample]:
    """Corrected callee turns as intent-corpus rows (``topic``, ``text``, ``intent``):
    the reviewer's text and intent where given, else the stored ones. Text is masked
    and kept on one line (the corpus is TSV). Streamed in id order, ``batch`` at a time."""
    for r in _corrected_turns(
        session,
        now,
        days,
        lambda co: [
            sa.func.coalesce(co.c.text, T.c.text).label("text"),
            sa.func.coalesce(co.c.intent, T.c.intent).label("intent"),
        ],
        lambda co: [sa.func.coalesce(co.c.intent, T.c.intent).is_not(None)],
        batch,
    ):
        yield TrainingExample(topic=r.topic, text=_one_line(r.text), intent=r.intent)


def _labels(value: Any) -> list[str]:
    """A JSON list column as read by raw SQL: a list on PostgreSQL, text on SQLite."""
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def reading_examples(
    session: Session, now: dt.datetime, days: int, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Corrected callee turns as reading-corpus rows (``nlu/reading/corpus`` format): the
    reviewer's text and reading where given, else the stored ones; text masked. A turn
    whose reading is not a valid corpus row (no act) is left out. ``bot nlu train
    --feedback FILE`` trains on them."""
    from nlu.reading.corpus import row_from_labels

    for r in _corrected_turns(
        session,
        now,
        days,
        lambda co: [
            sa.func.coalesce(co.c.text, T.c.text).label("text"),
            co.c.reading.label("corrected"),
            T.c.reading.label("stored"),
        ],
        lambda co: [],
        batch,
    ):
        try:
            yield row_from_labels(
                r.topic, _one_line(r.text), _labels(r.corrected) or _labels(r.stored)
            )
        except ValueError:
            continue
