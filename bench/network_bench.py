"""The accounts' network queries at bank scale: groups, one account's neighbourhood and
its whole group (recursive), on SQLite and PostgreSQL.

Fills ``entity_link`` directly (no calls needed) for ``--accounts`` accounts shaped like a
mule campaign: every account its own phone, ID and card (2 % share a phone with another
holder), a holder name from a pool of 2,000, a flagged-transaction counterparty (70 %
one of its own, 20 % from 500 shared names, 10 % one of 5 mule hubs), and for 60 % a call
naming 1-3 phones or people (5 % of the phones shared, people from a pool of 20,000). Then times each query.

    python bench/network_bench.py                  # 10,000 accounts, both engines
    python bench/network_bench.py --accounts 100000 --engines postgresql
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PG_URL = os.environ.get("BOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def fill(engine: sa.engine.Engine, accounts: int, seed: int = 7) -> tuple[int, int]:
    """Accounts and links; returns (rows of entity_link, a hub member's pk)."""
    from bot.store.links import LINKS, LinkKey
    from bot.store.models import AccountRow, utcnow

    rng = random.Random(seed)
    key = LinkKey(b"bench-link-key-32-bytes-long!!!!")
    now = utcnow()
    acc = AccountRow.__table__  # type: ignore[attr-defined]
    names = [f"名{i:04d}" for i in range(2000)]
    shared_names = [f"对手{i:03d}" for i in range(500)]
    hubs = [f"枢纽{i}" for i in range(5)]
    links: list[dict[str, Any]] = []

    def add(pk: int, kind: str, origin: str, value: str, shown: str, numeric: bool) -> None:
        links.append({
            "account_pk": pk, "call_id": None, "entity_id": None, "kind": kind,
            "origin": origin, "link_key": key.digest(kind, value) if numeric else value,
            "shown": shown, "key_id": key.key_id if numeric else None, "created_at": now,
        })  # fmt: skip

    rows: list[dict[str, Any]] = []
    hub_member = 0
    for pk in range(1, accounts + 1):
        phone = f"138{pk:08d}" if rng.random() > 0.02 else f"138{rng.randint(1, accounts):08d}"
        holder = rng.choice(names)
        rows.append({
            "id": pk, "account_id": f"6222{pk:012d}", "name": holder, "phone": phone,
            "phone_e164": "+86" + phone, "scenario": "suspicious_txn", "model_score": 0.5,
            "timezone": "Asia/Shanghai", "extra": {}, "created_at": now, "updated_at": now,
        })  # fmt: skip
        add(pk, "phone", "holder", phone, phone[:3] + "****" + phone[-4:], True)
        add(pk, "id_number", "holder", f"44010619900101{pk:04d}", "4****X", True)
        add(pk, "card", "holder", f"6222{pk:012d}", "****", True)
        add(pk, "person", "holder", holder, holder, False)
        r = rng.random()
        if r < 0.1:
            counterparty = rng.choice(hubs)
            hub_member = hub_member or pk
        elif r < 0.3:
            counterparty = rng.choice(shared_names)
        else:
            counterparty = f"独{pk}"
        add(pk, "person", "counterparty", counterparty, counterparty, False)
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.5:
                    said = f"139{rng.randint(0, 10**8 if rng.random() > 0.05 else 200):08d}"
                    add(pk, "phone", "said", said, said[:3] + "****", True)
                else:
                    add(pk, "person", "said", f"人{rng.randint(0, 20000)}", "", False)
    with engine.begin() as conn:
        conn.execute(sa.insert(acc), rows)
        for i in range(0, len(links), 5000):
            conn.execute(sa.insert(LINKS), links[i : i + 5000])
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))
    return len(links), hub_member


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float, Any]:
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times), out


def run(engine: sa.engine.Engine, accounts: int, n: int) -> None:
    from sqlmodel import Session

    from bot.store.links import group_of, groups, neighbourhood

    t0 = time.perf_counter()
    rows, hub = fill(engine, accounts)
    print(f"  {accounts:,} accounts, {rows:,} links loaded in {time.perf_counter() - t0:.1f} s")
    with Session(engine) as s:
        for name, fn in [
            ("groups (top 20)", lambda: groups(s)),
            ("neighbourhood of a hub member", lambda: neighbourhood(s, hub)),
            ("group_of a hub member (recursive)", lambda: group_of(s, hub)),
            ("neighbourhood of account 2", lambda: neighbourhood(s, 2)),
        ]:
            p50, worst, out = timed(fn, n)
            size = (
                f"largest {out[0].accounts:,}" if isinstance(out, list) and out
                else f"{len(out):,} accounts" if isinstance(out, set)
                else f"{len(out.accounts)} drawn" if hasattr(out, "accounts") else ""
            )  # fmt: skip
            print(f"  {name:38s} p50 {p50:8.1f} ms  max {worst:8.1f} ms  ({size})")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--n", type=int, default=5, help="timed runs per query")
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--pg", default=PG_URL)
    args = ap.parse_args()

    from bot.store.db import make_engine
    from bot.store.migrate import upgrade, upgrade_connection

    for kind in args.engines.split(","):
        print(f"{kind}:")
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{tmp}/bench.db"
                upgrade(url)
                engine = make_engine(url)
                run(engine, args.accounts, args.n)
                engine.dispose()
            continue
        schema = f"netbench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.pg)
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        engine = make_engine(args.pg, connect_args={"options": f"-csearch_path={schema}"})
        try:
            with engine.begin() as conn:
                upgrade_connection(conn)
            run(engine, args.accounts, args.n)
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
