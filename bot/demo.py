"""The demo campaign: the public personas as a bank's account list, called end to end.

Accounts CSV -> ``bot campaign import`` -> campaign started -> a worker dials every
account through a gateway (by default in ``bot demo`` the loopback gateway: real calls to
simulated callees who answer with the personas' recordings) -> results stored, the
dispositions queued for the bank (written to a JSON Lines file) and summarised.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.campaign.control import transition
from bot.campaign.importer import import_file
from bot.campaign.queue import Claim
from bot.campaign.worker import Gateway, SimulatedGateway, Worker
from bot.core.investigation import CallResult, Investigator
from bot.core.vocab import Disposition
from bot.delivery.adapters import FileDeliverer
from bot.delivery.outbox import deliver_due
from bot.sim.personas import Persona, load_dir
from bot.store.db import session_scope
from bot.store.models import AccountRow, CallRow, CampaignAccountRow, CampaignRow

COLUMNS = [
    "account_id", "name", "phone", "card_last4", "scenario", "model_score", "branch",
    "txn_amount", "txn_date", "txn_counterparty",
]  # fmt: skip


def write_accounts_csv(personas: list[Persona], path: Path) -> None:
    """The personas' accounts in the import format a bank would send."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.DictWriter(f, COLUMNS)
        out.writeheader()
        for p in personas:
            a, txn = p.account, p.account.txn
            out.writerow(
                {
                    "account_id": a.account_id,
                    "name": a.name,
                    "phone": a.phone,
                    "card_last4": a.card_last4 or "",
                    "scenario": a.scenario.value,
                    "model_score": a.model_score,
                    "branch": a.branch or "",
                    "txn_amount": txn.amount if txn else "",
                    "txn_date": txn.date.isoformat() if txn and txn.date else "",
                    "txn_counterparty": (txn.counterparty or "") if txn else "",
                }
            )


@dataclass(frozen=True)
class DemoRow:
    persona: str
    expected_outcome: str
    expected_band: str | None
    outcome: str | None
    band: str | None
    disposition: str | None
    needs_review: bool
    calls: int


def run_demo(
    engine: Engine,
    investigator: Investigator,
    personas_dir: Path,
    work_dir: Path,
    *,
    on_call: Callable[[], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    gateway: Gateway | None = None,
    concurrency: int = 1,
) -> tuple[str, list[DemoRow]]:
    """Import, start and call the campaign to the end. ``gateway`` defaults to the text
    simulation; ``bot demo`` passes the loopback gateway (real calls to simulated callees)."""
    personas, errors = load_dir(personas_dir)
    if not personas:
        raise FileNotFoundError(
            f"no usable personas in {personas_dir}: {'; '.join(map(str, errors))}"
        )
    name = "demo-" + dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    accounts_csv = work_dir / f"{name}.csv"
    write_accounts_csv(personas, accounts_csv)
    import_file(engine, accounts_csv, name)
    with session_scope(engine) as s:
        campaign = s.exec(select(CampaignRow).where(CampaignRow.name == name)).one()
        # A demo runs whenever it is started: open all day, every day; retries at once.
        campaign.window_start, campaign.window_end = "00:00", "24:00"
        campaign.weekdays, campaign.backoff_minutes = [1, 2, 3, 4, 5, 6, 7], [0]
        s.add(campaign)
    transition(engine, name, "start")
    if on_total:
        on_total(len(personas))
    if gateway is None:
        gateway = SimulatedGateway({p.account.account_id: p.to_case().answers for p in personas})

    def account_done(_claim: Claim, result: CallResult | None) -> None:
        if on_call and (
            result is None or result.decision.disposition is not Disposition.RETRY_CALL
        ):
            on_call()

    worker = Worker(
        engine,
        investigator,
        gateway,
        worker_id="demo",
        poll_s=0.05,
        on_call=account_done,
        concurrency=concurrency,
    )
    worker.run(until_idle=True)
    deliver_to_file(engine, work_dir / "dispositions.jsonl")
    return name, _rows(engine, name, personas)


def deliver_to_file(engine: Engine, path: Path) -> int:
    """Deliver everything due in the outbox to a JSON Lines file (the demo's "bank")."""
    deliverer = FileDeliverer(path)
    delivered = 0
    try:
        while True:
            stats = deliver_due(engine, deliverer)
            delivered += stats.delivered
            if not stats.claimed:
                return delivered
    finally:
        deliverer.close()


def _rows(engine: Engine, name: str, personas: list[Persona]) -> list[DemoRow]:
    by_account = {p.account.account_id: p for p in personas}
    rows = []
    with session_scope(engine) as s:
        items = s.exec(
            select(CampaignAccountRow, AccountRow)
            .join(AccountRow, AccountRow.id == CampaignAccountRow.account_pk)  # type: ignore[arg-type]
            .join(CampaignRow, CampaignRow.id == CampaignAccountRow.campaign_id)  # type: ignore[arg-type]
            .where(CampaignRow.name == name)
        ).all()
        for item, account in items:
            calls = s.exec(select(CallRow).where(CallRow.campaign_account_id == item.id)).all()
            last = max(calls, key=lambda c: c.attempt_no) if calls else None
            p = by_account[account.account_id]
            rows.append(
                DemoRow(
                    persona=p.id,
                    expected_outcome=p.expected.outcome.value,
                    expected_band=p.expected.risk_band.value if p.expected.risk_band else None,
                    outcome=last.outcome if last else None,
                    band=last.risk_band if last else None,
                    disposition=item.final_disposition,
                    needs_review=bool(last and last.needs_review),
                    calls=len(calls),
                )
            )
    return sorted(rows, key=lambda r: r.persona)
