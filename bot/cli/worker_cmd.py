"""``bot worker``: dial due calls and host their sessions."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from bot.cli.common import console, fail, settings


def load_gateway(name: str, personas: Path | None):  # type: ignore[no-untyped-def]
    """The configured gateway. ``simulated``: text-mode callees answering as the
    personas whose account ids match (the audio loopback and real gateways come with
    the voice path)."""
    from bot.campaign.worker import SimulatedGateway

    if name != "simulated":
        fail(f"unknown gateway '{name}' (available: simulated)")
    answers = {}
    if personas is not None:
        from bot.sim.personas import load_dir

        found, errors = load_dir(personas)
        for e in errors:
            console.print(f"[yellow]skipped[/] {e}", highlight=False)
        answers = {p.account.account_id: p.to_case().answers for p in found}
    return SimulatedGateway(answers)


def worker_command(
    gateway: str = typer.Option("simulated", "--gateway", help="Gateway to dial through"),
    personas: Path | None = typer.Option(
        None, "--personas", help="Persona directory for the simulated gateway"
    ),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Calls at once in this worker"),
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Exit when no campaign has work left"
    ),
    worker_id: str | None = typer.Option(None, "--id", help="Worker id (default host:pid)"),
    calls_per_second: float | None = typer.Option(
        None, "--rate", help="Max calls started per second"
    ),
    deliver: bool = typer.Option(
        True, "--deliver/--no-deliver", help="Also deliver dispositions from the outbox"
    ),
) -> None:
    """Claim due calls of running campaigns, place them, store the results. Stops
    cleanly on SIGINT/SIGTERM (calls in progress finish first)."""
    from bot.campaign.worker import Worker
    from bot.runtime import build_investigator
    from bot.store.db import make_engine
    from bot.store.migrate import upgrade

    s = settings()
    upgrade(s.db_url)
    engine = make_engine(s.db_url)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker = Worker(
        engine,
        build_investigator(s),
        load_gateway(gateway, personas),
        worker_id=worker_id,
        concurrency=concurrency,
        calls_per_second=calls_per_second,
    )
    console.print(f"worker {worker.worker_id} started")
    delivery = None
    if deliver:
        from bot.delivery.outbox import serve

        delivery = threading.Thread(
            target=serve, args=(engine, s.delivery, s.data_dir, stop), name="delivery", daemon=True
        )
        delivery.start()
    stats = worker.run(stop, until_idle=until_idle)
    stop.set()
    if delivery is not None:
        delivery.join(timeout=30)
    console.print(
        f"worker {worker.worker_id} stopped: {stats.calls} calls, {stats.failed} failed, {stats.recovered} recovered"
    )
