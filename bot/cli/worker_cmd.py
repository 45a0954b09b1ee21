"""``bot worker``: dial due calls and host their sessions."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.cli.common import console, fail, settings
from bot.core.masking import mask_text
from bot.gateways import GatewayName

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from bot.campaign.health import WorkerHealth
    from bot.campaign.worker import Gateway, Notice
    from bot.core.investigation import Investigator
    from bot.delivery.adapters import Deliverer
    from bot.settings import Settings
    from bot.sim.personas import Persona
    from bot.voice.gateways import Provider
    from bot.voice.session import VoiceStack
    from bot.voice.telephony_gateway import TelephonyGateway


def load_gateway(
    name: str,
    personas: Path | None,
    audio_dir: Path | None = None,
    *,
    investigator: Investigator | None = None,
) -> Gateway:
    """The gateway to dial through.

    * ``simulated``: text-mode callees answering as the personas whose account ids match;
    * ``loopback``: real phone calls (Twilio protocol over a local WebSocket, VAD,
      Whisper, TTS) to simulated callees that answer with the personas' recordings
      (``--audio-dir``, default ``<personas>/audio``).
    """
    if name not in set(GatewayName):
        fail(f"unknown gateway '{name}' (available: {', '.join(GatewayName)})")
    if name == "twilio":
        return _twilio_gateway()
    found: list[Persona] = []
    if personas is not None:
        from bot.sim.personas import load_dir

        found, errors = load_dir(personas)
        for e in errors:
            console.print(f"[yellow]skipped[/] {e}", highlight=False)
    if name == "simulated":
        from bot.campaign.worker import SimulatedGateway

        return SimulatedGateway({p.account.account_id: p.to_case().answers for p in found})
    if personas is None:
        fail("--gateway loopback needs --personas (the simulated callees)")
    audio = audio_dir or personas / "audio"
    if not audio.is_dir():
        fail(f"no persona audio at {audio}; pass --audio-dir")
    from bot.voice.loopback import LoopbackGateway

    table = {p.account.account_id: (p.id, p.to_case().answers) for p in found}
    return LoopbackGateway(_voice_stack("loopback", investigator), table, audio)


def _voice_stack(provider: Provider, investigator: Investigator | None = None) -> VoiceStack:
    """The shared voice parts (Whisper, TTS with its prompts pre-rendered)."""
    from bot.runtime import build_investigator
    from bot.voice.logs import configure_pipecat_logging
    from bot.voice.runtime import build_voice_stack, prerender_prompts

    configure_pipecat_logging()
    s = settings()
    investigator = investigator or build_investigator(s)
    stack, cache = build_voice_stack(s, investigator)
    stack.provider = provider
    if cache is not None:
        prerender_prompts(cache, investigator)
    return stack


def _twilio_gateway() -> TelephonyGateway:
    """Real calls through Twilio: REST dialling, signed status callbacks and the media
    stream served together on ``voice.host:voice.port`` (behind ``public_base_url``)."""
    from bot.telephony.twilio_rest import TwilioDialer
    from bot.telephony.webhooks import twilio_router
    from bot.voice.telephony_gateway import RingPolicy, TelephonyGateway

    tw = settings().telephony.twilio
    missing = [
        k
        for k in ("account_sid", "from_number", "public_base_url", "stream_url")
        if not getattr(tw, k)
    ]
    if missing:
        fail("Twilio needs " + ", ".join(f"BOT_TELEPHONY__TWILIO__{k.upper()}" for k in missing))
    v = settings().voice
    return TelephonyGateway(
        _voice_stack("twilio"),
        TwilioDialer(tw),
        tw.stream_url,
        routers=lambda board: [twilio_router(tw, board)],
        host=v.host,
        port=v.port or 8080,
        policy=RingPolicy(ring_timeout_s=tw.ring_timeout_s),
    )


def worker_command(
    gateway: GatewayName = typer.Option(
        GatewayName.SIMULATED,
        "--gateway",
        case_sensitive=False,
        help="simulated (text), loopback (real calls to simulated callees) or twilio",
    ),
    personas: Path | None = typer.Option(
        None, "--personas", help="Persona directory for the simulated or loopback gateway"
    ),
    audio_dir: Path | None = typer.Option(
        None, "--audio-dir", help="Persona recordings for the loopback gateway"
    ),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Calls at once in this worker"),
    until_idle: bool = typer.Option(
        False,
        "--until-idle",
        help="Exit once no call is live and nothing is due within --idle-horizon",
    ),
    idle_horizon: float = typer.Option(
        60.0,
        "--idle-horizon",
        min=0,
        help="With --until-idle: wait for items due within this many seconds; exit when "
        "the next one is due later (retries backing off, calling hours closed)",
    ),
    status_every: float = typer.Option(
        10.0,
        "--status-every",
        min=0,
        help="Print a status line every this many seconds (0 = never)",
    ),
    worker_id: str | None = typer.Option(None, "--id", help="Worker id (default host:pid)"),
    calls_per_second: float | None = typer.Option(
        None, "--rate", help="Max calls started per second"
    ),
    deliver: bool = typer.Option(
        True, "--deliver/--no-deliver", help="Also deliver dispositions from the outbox"
    ),
    outbox_wait: float = typer.Option(
        60.0,
        "--outbox-wait",
        min=0,
        help="With --until-idle and delivery: before exiting, keep delivering while some "
        "disposition is due within this many seconds (items a dead endpoint keeps "
        "failing back off past it, so the wait ends)",
    ),
) -> None:
    """Claim due calls of running campaigns, place them, store the results. Stops
    cleanly on SIGINT/SIGTERM (calls in progress finish first). Rides out database
    outages (logged once each, then retried with backoff)."""
    from bot.cli.config_cmd import preflight
    from bot.config_check import for_worker

    s = preflight(for_worker(gateway, deliver=deliver))  # before any model loads
    from bot.campaign.health import WorkerHealth
    from bot.campaign.progress import idle_bound_line
    from bot.campaign.worker import Worker
    from bot.runtime import build_investigator
    from bot.store.db import make_engine
    from bot.store.migrate import upgrade
    from bot.store.retry import GaveUp, Reconnector
    from bot.voice.asr_service import hold_reason

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    reconnector = Reconnector(base_s=s.db_retry_base_s, cap_s=s.db_retry_cap_s)
    try:
        reconnector.call(lambda: upgrade(s.db_url), stop=stop)
    except GaveUp as exc:
        fail(str(exc), code=1)
    engine = make_engine(s.db_url)
    deliverer = _deliverer(s) if deliver else None  # before the models: fail fast
    health = WorkerHealth()
    health.watch_database(engine)
    _serve_metrics(s.voice.host, s.voice.metrics_port, health)
    worker = Worker(
        engine,
        build_investigator(s),
        load_gateway(gateway, personas, audio_dir),
        worker_id=worker_id,
        concurrency=concurrency,
        calls_per_second=calls_per_second,
        reconnector=reconnector,
        outbox_wait_s=outbox_wait if deliver else None,
        idle_horizon_s=idle_horizon,
        status_every_s=status_every,
        on_notice=print_notice,
        hold=hold_reason,
    )
    health.models_loaded()
    health.watch_loop(lambda: worker.last_turn)
    health.watch_gateway(worker.gateway)
    console.print(f"worker {worker.worker_id} started", highlight=False)
    if until_idle:
        console.print(idle_bound_line(idle_horizon, worker.outbox_wait_s), highlight=False)
    delivery, delivery_error = None, []
    if deliverer is not None:
        from bot.delivery.outbox import serve

        def deliver_until_stopped() -> None:
            try:
                serve(engine, s.delivery, s.data_dir, stop, deliverer=deliverer)
            except Exception as exc:  # the worker must not go on without delivery
                delivery_error.append(f"{type(exc).__name__}: {exc}")
                stop.set()

        delivery = threading.Thread(target=deliver_until_stopped, name="delivery", daemon=True)
        delivery.start()
        health.watch_thread("delivery", delivery)
    try:
        stats = worker.run(stop, until_idle=until_idle)
    finally:
        close = getattr(worker.gateway, "close", None)
        if callable(close):
            close()
    stop.set()
    if delivery is not None:
        delivery.join(timeout=30)
    outages = f", {stats.outages} database outages ridden out" if stats.outages else ""
    console.print(
        f"worker {worker.worker_id} stopped: {stats.calls} calls, {stats.failed} failed, "
        f"{stats.recovered} recovered{outages}"
    )
    if deliver:
        _outbox_summary(engine)
    engine.dispose()
    from bot import metrics

    metrics.mark_process_dead()  # multi-process mode: its live gauges go
    if delivery_error:
        fail(f"delivery stopped: {mask_text(delivery_error[0])}", code=1)


def _deliverer(s: Settings) -> Deliverer:
    """The configured deliverer, built before anything heavy loads; one clear line and
    exit 1 if it cannot be."""
    from bot.delivery.adapters import make_deliverer

    try:
        return make_deliverer(s.delivery, s.data_dir)
    except (OSError, ValueError) as exc:
        fail(f"delivery cannot start: {mask_text(str(exc))}", code=1)


#: How each kind of worker notice is shown (colour only on a terminal).
_NOTICE_STYLE = {"status": "", "info": "green", "idle": "", "warn": "bold yellow"}


def print_notice(notice: Notice) -> None:
    """A worker's status line or warning, as plain text in a log."""
    text = f"warning: {notice.text}" if notice.kind == "warn" else notice.text
    console.print(text, style=_NOTICE_STYLE[notice.kind], markup=False, highlight=False)


def _serve_metrics(host: str, port: int, health: WorkerHealth) -> None:
    """Prometheus metrics, ``/healthz`` and ``/readyz`` on ``host:port``
    (``voice.metrics_port``; 0 = off)."""
    if not port:
        return
    from bot import metrics

    try:
        metrics.serve(port, host, health.report)
    except OSError as exc:
        fail(f"cannot serve metrics on {host}:{port} (BOT_VOICE__METRICS_PORT): {exc}", code=1)
    console.print(f"metrics on http://{host}:{port}/metrics", highlight=False)


def _outbox_summary(engine: Engine) -> None:
    """What the delivery loop left behind: items backing off (a later worker sends them)
    and dead letters (they need ``requeue_dead`` once the cause is fixed)."""
    from bot.delivery.outbox import outbox_counts
    from bot.store.retry import describe, is_unreachable

    try:
        counts = outbox_counts(engine)
    except Exception as exc:
        if not is_unreachable(exc):
            raise
        console.print(f"outbox: not counted, database unreachable ({describe(exc)})")
        return
    if counts["pending"] or counts["dead"]:
        console.print(
            f"outbox: {counts['pending']} pending (retrying later), {counts['dead']} dead",
            highlight=False,
        )
