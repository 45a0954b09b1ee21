"""Campaign throughput and crash safety: N accounts, W worker processes, one database.

Text mode: simulated callees answer as the public personas (each account is given one
persona's answers, round robin), so the figure measures dialogue + NLU + scoring + the
database work of claiming and storing, not audio.

    python bench/campaign_bench.py --accounts 10000 --workers 4 --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/campaign_bench.py --accounts 2000 --workers 4 --kill-after 300 --lease 5   # crash test

Checks at the end (exit 1 if any fails): every work item is done; each has exactly one
final disposition (no account ended twice); no call overlapped another for the same
account (never two live calls); the calls of a SIGKILLed worker were recovered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import multiprocessing as mp
import os
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BOT_SHARED_DIR", REPO.parent / "shared"))
#: Inside the default calling window whatever the wall clock says: the bench is about
#: throughput, not about waiting for 09:00.
BENCH_NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)


def persona_answers() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for path in sorted((SHARED / "personas").glob("*.yaml")):
        p = yaml.safe_load(path.read_text(encoding="utf-8"))
        out.append((p["account"], p["answers"]))
    return out


def account_id(i: int) -> str:
    return f"62258801{i:08d}"


def bench_engine(url: str, schema: str) -> sa.engine.Engine:
    """An engine on the benchmark's own PostgreSQL schema (or the SQLite file)."""
    from bot.store.db import make_engine

    if url.startswith("postgresql"):
        return make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    return make_engine(url)


def setup(url: str, schema: str, n: int) -> None:
    from bot.campaign.recorder import account_fields
    from bot.core.account import Account
    from bot.store.db import session_scope
    from bot.store.migrate import upgrade, upgrade_connection
    from bot.store.models import AccountRow, CampaignAccountRow, CampaignRow

    if url.startswith("postgresql"):
        admin = sa.create_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        engine = bench_engine(url, schema)
        with engine.begin() as conn:
            upgrade_connection(conn)
    else:
        upgrade(url)
        engine = bench_engine(url, schema)
    personas = persona_answers()
    with session_scope(engine) as s:
        campaign = CampaignRow(
            name="bench", state="running", max_attempts=3, backoff_minutes=[0], max_concurrency=1000
        )
        s.add(campaign)
        s.flush()
        for start in range(0, n, 1000):
            rows = []
            for i in range(start, min(n, start + 1000)):
                acct, _ = personas[i % len(personas)]
                fields = account_fields(Account.model_validate(acct))
                rows.append(AccountRow(**{**fields, "account_id": account_id(i)}))
            s.add_all(rows)
            s.flush()
            s.add_all(
                CampaignAccountRow(
                    campaign_id=campaign.id,
                    account_pk=r.id,
                    next_attempt_at=BENCH_NOW - dt.timedelta(minutes=1),
                )  # type: ignore[arg-type]
                for r in rows
            )
    engine.dispose()


def run_worker(url: str, schema: str, n: int, name: str, lease_s: float) -> None:
    os.environ["BOT_INTENT_MODEL_ENABLED"] = os.environ.get("BENCH_MODEL", "true")
    import torch

    torch.set_num_threads(1)
    from bot.campaign.worker import SimulatedGateway, Worker
    from bot.runtime import build_investigator
    from bot.settings import Settings

    personas = persona_answers()
    answers = {account_id(i): personas[i % len(personas)][1] for i in range(n)}
    engine = bench_engine(url, schema)
    clock_offset = BENCH_NOW - dt.datetime.now(dt.UTC)
    worker = Worker(
        engine,
        build_investigator(Settings()),
        SimulatedGateway(answers),
        worker_id=name,
        poll_s=0.05,
        lease_s=lease_s,
        clock=lambda: dt.datetime.now(dt.UTC) + clock_offset,
    )
    worker.run(until_idle=True)


def verify(url: str, schema: str, n: int) -> dict[str, Any]:
    from sqlmodel import select

    from bot.store.db import session_scope
    from bot.store.models import CallRow, CampaignAccountRow, DispositionRow

    engine = bench_engine(url, schema)
    with session_scope(engine) as s:
        items = s.exec(select(CampaignAccountRow)).all()
        calls = s.exec(select(CallRow)).all()
        finals = s.exec(
            select(DispositionRow).where(DispositionRow.disposition != "retry_call")
        ).all()
    per_account = Counter(d.account_pk for d in finals)
    overlaps = 0
    by_account: dict[int, list[Any]] = {}
    for c in calls:
        by_account.setdefault(c.account_pk, []).append(c)
    for cs in by_account.values():
        cs.sort(key=lambda c: c.started_at)
        for a, b in itertools.pairwise(cs):
            if a.ended_at is None or a.ended_at > b.started_at:
                overlaps += 1
    engine.dispose()
    return {
        "items": len(items),
        "items_done": sum(1 for i in items if i.state == "done"),
        "calls": len(calls),
        "lost_calls_recovered": sum(1 for c in calls if c.ended_by == "worker_lost"),
        "accounts_ended_once": sum(1 for v in per_account.values() if v == 1),
        "accounts_ended_twice_or_more": sum(1 for v in per_account.values() if v > 1),
        "overlapping_calls_same_account": overlaps,
        "outcomes": dict(Counter(c.outcome for c in calls)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument(
        "--db",
        default=os.environ.get(
            "BOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    ap.add_argument(
        "--kill-after", type=int, default=0, help="SIGKILL worker 0 after this many stored calls"
    )
    ap.add_argument("--lease", type=float, default=30.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    setup(args.db, schema, args.accounts)
    setup_s = time.perf_counter() - t0
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=run_worker, args=(args.db, schema, args.accounts, f"w{i}", args.lease))
        for i in range(args.workers)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    killed = False
    if args.kill_after:
        eng = bench_engine(args.db, schema)
        while not killed and any(p.is_alive() for p in procs):
            with eng.connect() as conn:
                stored = conn.execute(
                    sa.text("select count(*) from call_attempt where ended_at is not null")
                ).scalar_one()
            if stored >= args.kill_after:
                os.kill(procs[0].pid, signal.SIGKILL)  # type: ignore[arg-type]
                killed = True
            time.sleep(0.2)
        eng.dispose()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    result = verify(args.db, schema, args.accounts)
    result.update(
        accounts=args.accounts,
        workers=args.workers,
        db=args.db.split("://")[0],
        setup_s=round(setup_s, 1),
        run_s=round(elapsed, 1),
        calls_per_second=round(result["calls"] / elapsed, 1),
        worker_killed=killed,
    )
    ok = (
        result["items_done"] == args.accounts
        and result["accounts_ended_once"] == args.accounts
        and result["accounts_ended_twice_or_more"] == 0
        and result["overlapping_calls_same_account"] == 0
        and (not killed or result["lost_calls_recovered"] >= 1)
    )
    result["ok"] = ok
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    if args.db.startswith("postgresql"):
        admin = sa.create_engine(args.db)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
