"""Prometheus metrics: what the bot counts, and the functions the code calls to count it.

Every name starts with ``callbot_``. Labels have bounded cardinality: never a call id,
a phone number, an account or a user name. Campaign and branch names are bounded by
configuration, and capped here all the same (:class:`Bounded`: after
:data:`MAX_LABEL_VALUES` distinct values, further ones count as ``other``); a long digit
run in a label value is starred, so no number leaks into a scrape.

Two kinds of metric:

* events, counted where they happen (a call stored, a turn answered, a segment
  decoded, a delivery attempt) by the small functions below;
* backlogs (campaign queues, the outbox, the review desk), read from the database at
  scrape time by :class:`DatabaseCollector` (a few cheap ``COUNT``/``MIN`` queries), so
  they are right whichever process changed them.

Multi-process mode: with ``PROMETHEUS_MULTIPROC_DIR`` set (an existing, empty, writable
folder, set in the environment before the process starts: prometheus_client picks its
storage at import), every process writes its samples there and :func:`render` adds up
those of all processes (``prometheus_client.multiprocess``); gauges of live processes
only, for the active-call gauges. Without it, each process serves its own. See
``docs/operations.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from sqlalchemy.engine import Engine

    from bot.store.backlogs import Backlog
    from bot.store.models import AccountRow, CallRow, CampaignRow

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Distinct values one label keeps per process before the rest become ``other``.
MAX_LABEL_VALUES = 50
OTHER = "other"
_LONG_DIGITS = re.compile(r"\d{7,}")
#: The window of verdicts the agreement metrics count (read at each scrape).
AGREEMENT_WINDOW = dt.timedelta(days=7)
#: Why an item is reviewed (``ReviewItemRow.reason``): the agreement metrics' labels.
REVIEW_REASONS = ("suspicious", "sample")


class Bounded:
    """Maps label values onto at most ``limit`` distinct ones (then :data:`OTHER`)."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        text = _LONG_DIGITS.sub(lambda m: "*" * len(m.group()), str(value or "none"))[:60]
        with self._lock:
            if text in self._seen:
                return text
            if len(self._seen) < self.limit:
                self._seen.add(text)
                return text
        return OTHER


campaign_label = Bounded()
branch_label = Bounded()
#: Outcomes, bands and dispositions are enums; bounded anyway against a future bug.
_enum_label = Bounded(200)

# -- events -----------------------------------------------------------------------------

CALLS = Counter(
    "callbot_calls",
    "Calls stored, by outcome, risk band, disposition and campaign.",
    ["outcome", "band", "disposition", "campaign"],
)
CALLS_BY_BRANCH = Counter(
    "callbot_calls_by_branch",
    "Calls stored, by the account's branch and outcome.",
    ["branch", "outcome"],
)
ACTIVE_CALLS = Gauge(
    "callbot_active_calls",
    "Calls being placed or talked now (all live workers).",
    multiprocess_mode="livesum",
)
CALL_LIMIT = Gauge(
    "callbot_call_concurrency_limit",
    "Calls the live workers may hold at once (their --concurrency).",
    multiprocess_mode="livesum",
)
TURN_LATENCY = Histogram(
    "callbot_turn_latency_ms",
    "End of the callee's speech to the first byte of the bot's answer on the wire (ms).",
    buckets=(200, 300, 400, 500, 600, 800, 1000, 1250, 1500, 2000, 3000, 5000),
)
WHISPER_DECODE = Histogram(
    "callbot_whisper_decode_ms",
    "Wall time of one Whisper decode of a speech segment on a call (ms).",
    buckets=(50, 100, 150, 200, 300, 400, 600, 800, 1000, 1500, 2500, 5000),
)
ASR_QUEUE_DELAY = Gauge(
    "callbot_asr_queue_delay_seconds",
    "Speech segments' wait for the recogniser (enqueue to decode start): moving p95 over "
    "10 s, or the oldest waiting segment's age when longer (s).",
    multiprocess_mode="livemax",
)
ASR_HOLDING = Gauge(
    "callbot_asr_holding_new_calls",
    "1 while the ASR queue delay is over its bound and the worker takes no new calls.",
    multiprocess_mode="livemax",
)
ASR_BATCH = Histogram(
    "callbot_asr_batch_segments",
    "Speech segments decoded together in one recogniser call.",
    buckets=(1, 2, 4, 8, 16, 32),
)
SPEECH_ERRORS = Counter(
    "callbot_speech_errors",
    "Speech recognition (asr) and synthesis (tts) failures on calls.",
    ["component"],
)
DELIVERIES = Counter(
    "callbot_outbox_deliveries",
    "Outbox delivery attempts by result: delivered, retried (failed, tried again later), "
    "dead (failed for good), lost (another deliverer took the item over).",
    ["result"],
)


@dataclass(frozen=True)
class CallLabels:
    outcome: str
    band: str
    disposition: str
    campaign: str
    branch: str


def call_labels(call: CallRow, campaign: CampaignRow, account: AccountRow) -> CallLabels:
    """A stored call's labels (read inside its transaction, counted after it commits)."""
    return CallLabels(
        _enum_label(call.outcome),
        _enum_label(call.risk_band),
        _enum_label(call.disposition),
        campaign_label(campaign.name),
        branch_label(account.branch),
    )


def call_recorded(labels: CallLabels) -> None:
    """A call's result was stored."""
    CALLS.labels(labels.outcome, labels.band, labels.disposition, labels.campaign).inc()
    CALLS_BY_BRANCH.labels(labels.branch, labels.outcome).inc()


def worker_load(active: int, limit: int) -> None:
    """This process's worker holds ``active`` calls of at most ``limit`` (its
    ``--concurrency``); both 0 once it stops."""
    ACTIVE_CALLS.set(active)
    CALL_LIMIT.set(limit)


def turn_answered(latency_ms: float | None) -> None:
    if latency_ms is not None:
        TURN_LATENCY.observe(latency_ms)


def segment_decoded(seconds: float) -> None:
    WHISPER_DECODE.observe(seconds * 1000.0)


def asr_queue(delay_s: float, holding: bool) -> None:
    """The ASR service's queue delay now, and whether it holds new calls back."""
    ASR_QUEUE_DELAY.set(delay_s)
    ASR_HOLDING.set(1 if holding else 0)


def asr_batch(segments: int) -> None:
    ASR_BATCH.observe(segments)


def speech_error(component: str) -> None:
    """``component``: ``asr`` or ``tts``."""
    SPEECH_ERRORS.labels(_enum_label(component)).inc()


@contextlib.contextmanager
def counting_errors(component: str) -> Iterator[None]:
    """Counts an exception escaping the block as a ``component`` error, and re-raises it."""
    try:
        yield
    except Exception:
        speech_error(component)
        raise


def delivery_attempted(result: str, n: int = 1) -> None:
    if n:
        DELIVERIES.labels(_enum_label(result)).inc(n)


def mark_process_dead(pid: int | None = None) -> None:
    """Multi-process mode: drop this (exiting) process's live gauges."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


# -- backlogs, read at scrape time -------------------------------------------------------


class DatabaseCollector(Collector):
    """Queue depths and ages from the database, computed on each scrape. A database that
    cannot be read gives ``callbot_metrics_database_up 0`` instead of failing the scrape."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime] | None = None) -> None:
        from bot.store.models import utcnow

        self.engine = engine
        self.clock = clock or utcnow

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "callbot_metrics_database_up", "1 if this scrape could read the database."
        )
        try:
            families = list(self._families(self.clock()))
        except Exception as exc:
            log.warning("metrics: database not readable: %s", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [*families, up]

    def _families(self, now: dt.datetime) -> Iterator[Metric]:
        from bot.store.backlogs import (
            outbox_backlog,
            recent_verdicts,
            review_backlog,
            running_queues,
        )

        depth = GaugeMetricFamily(
            "callbot_campaign_queue_depth",
            "Work items due now in running campaigns, by campaign.",
            labels=["campaign"],
        )
        age = GaugeMetricFamily(
            "callbot_campaign_queue_oldest_due_seconds",
            "How long the longest-waiting due item of a running campaign has been due (s).",
            labels=["campaign"],
        )
        merged: dict[str, tuple[int, float]] = {}
        for name, n, oldest in running_queues(self.engine, now):
            label = campaign_label(name)
            had_n, had_age = merged.get(label, (0, 0.0))
            merged[label] = (had_n + n, max(had_age, _age(now, oldest)))
        for label, (n, oldest_s) in sorted(merged.items()):
            depth.add_metric([label], n)
            age.add_metric([label], oldest_s)
        yield depth
        yield age
        yield from _backlog(
            outbox_backlog(self.engine), now, "callbot_outbox_items",
            "Outbox items not delivered: pending (to send or retry) and dead (given up).",
            ("pending", "dead"), "callbot_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox item (s).",
        )  # fmt: skip
        yield from _agreement(recent_verdicts(self.engine, now - AGREEMENT_WINDOW))
        yield from _backlog(
            review_backlog(self.engine), now, "callbot_review_queue_depth",
            "Review items not finished: open (waiting) and claimed (a reviewer has it).",
            ("open", "claimed"), "callbot_review_queue_oldest_open_seconds",
            "Age of the oldest open review item (s).",
        )  # fmt: skip


def _agreement(verdicts: dict[tuple[str, bool], int]) -> Iterator[Metric]:
    """Verdicts of the window by reason and verdict, and the share that agreed with the
    bot per reason (absent for a reason without verdicts). The random sample's share is
    the unbiased one: suspicious calls are chosen because the bot flagged them."""
    counts = GaugeMetricFamily(
        "callbot_review_verdicts",
        f"Reviewers' verdicts of the last {AGREEMENT_WINDOW.days} days, by the item's "
        "reason for review and verdict (agree, overturn).",
        labels=["reason", "verdict"],
    )
    share = GaugeMetricFamily(
        "callbot_review_agreement_ratio",
        f"Share of the last {AGREEMENT_WINDOW.days} days' verdicts that agreed with the "
        "bot, by reason for review (sample: the unbiased random sample).",
        labels=["reason"],
    )
    for reason in REVIEW_REASONS:
        agreed, overturned = verdicts.get((reason, True), 0), verdicts.get((reason, False), 0)
        counts.add_metric([reason, "agree"], agreed)
        counts.add_metric([reason, "overturn"], overturned)
        if agreed + overturned:
            share.add_metric([reason], agreed / (agreed + overturned))
    yield counts
    yield share


def _backlog(
    backlog: Backlog,
    now: dt.datetime,
    name: str,
    doc: str,
    states: tuple[str, ...],
    age_name: str,
    age_doc: str,
) -> Iterator[Metric]:
    """A backlog's items by state, and the age of its oldest waiting item."""
    items = GaugeMetricFamily(name, doc, labels=["state"])
    for state in states:
        items.add_metric([state], backlog.counts.get(state, 0))
    yield items
    yield _gauge(age_name, age_doc, _age(now, backlog.oldest))


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], value)
    return family


def _age(now: dt.datetime, then: dt.datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # SQLite returns naive UTC
        then = then.replace(tzinfo=dt.UTC)
    return max(0.0, (now - then).total_seconds())


# -- exposition -------------------------------------------------------------------------


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class _ThisProcess(Collector):
    """The default registry (this process's metrics) as one collector of another."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def registry(
    engine: Engine | None = None, clock: Callable[[], dt.datetime] | None = None
) -> CollectorRegistry:
    """What one scrape reports: the events of this process (or, in multi-process mode, of
    all processes sharing the folder), plus the database backlogs when ``engine`` is
    given."""
    reg = CollectorRegistry()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(reg)  # type: ignore[no-untyped-call]
    else:
        reg.register(_ThisProcess())
    if engine is not None:
        reg.register(DatabaseCollector(engine, clock))
    return reg


def render(engine: Engine | None = None, clock: Callable[[], dt.datetime] | None = None) -> bytes:
    """The Prometheus text exposition of :func:`registry`."""
    return generate_latest(registry(engine, clock))


def bearer_ok(authorization: str | None, token: str) -> bool:
    """An ``Authorization: Bearer <token>`` header matches ``token`` (no token: open)."""
    if not token:
        return True
    import hmac

    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def serve(
    port: int,
    host: str = "127.0.0.1",
    ready: Callable[[], tuple[bool, dict[str, str]]] | None = None,
) -> WSGIServer:
    """The worker's operations server on a daemon thread (``bot worker``, whose gateway
    may have no web app to add routes to): ``/metrics``, ``/healthz`` and, with
    ``ready`` (see :class:`bot.campaign.health.WorkerHealth`), ``/readyz``; any other
    path answers the metrics, as prometheus_client's own server does. ``shutdown()``
    stops it."""
    import json
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes and probes every few seconds: not worth a log line each

    metrics_app = make_wsgi_app(registry())

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        body: dict[str, object]
        if path == "/healthz":
            ok, body = True, {"status": "ok"}
        elif path == "/readyz" and ready is not None:
            ok, checks = ready()
            body = {"status": "ok" if ok else "unavailable", "checks": checks}
        else:
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "application/json")],
        )
        return [json.dumps(body).encode()]

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
