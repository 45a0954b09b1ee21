"""Masking stored numbers (migration 0007, ``bot db mask-pii``): calls per second.

Fills a fresh database with ``--calls`` calls as the code before migration 0007 stored
them, every number in clear, each call like the one tests/store/test_pii_backfill.py
checks: 2 turns (the callee's with an ID, a card and a phone), 4 entities with offsets
into the clear text, a risk assessment with evidence, a review item and a verdict with a
typed card and a turn correction with a phone, a call error with a phone. Then it times
:func:`~bot.store.pii_backfill.mask_stored` in one transaction, as the migration's data
step and ``bot db mask-pii`` run it: 15 originals per call sealed under a fresh key
(``--keyless``: also dropped), and again with nothing left to mask (the read-only pass a
second ``bot db mask-pii`` costs). Each ``--repeat`` fills a fresh database; the table
gives the median and the range over repeats, and checks the counts and that no number
is left in clear.

    python bench/pii_backfill_bench.py                          # 2,000 calls, SQLite
    python bench/pii_backfill_bench.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/pii_backfill_bench.py --calls 20000 --repeat 1 --batch 100 500 2000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.store import migrate  # noqa: E402
from bot.store.models import (  # noqa: E402
    AccountRow,
    CallRow,
    EntityRow,
    ReviewItemRow,
    RiskAssessmentRow,
    TurnRow,
    UserRow,
    VerdictRow,
)
from bot.store.pii_backfill import mask_stored  # noqa: E402
from bot.store.pii_crypto import KeyRing  # noqa: E402

#: What one call's backfill changes (rows per table) and seals, as the test counts them.
ROWS_PER_CALL = {
    "turn": 1, "extracted_entity": 4, "risk_assessment": 1, "verdict": 1, "call_attempt": 1,
}  # fmt: skip
SEALED_PER_CALL = 15
#: Every card in the fill starts so; none may be left in a turn once masked.
CARD_PREFIX = "62220210"
#: Calls written per transaction while filling.
CHUNK = 500


# -- a database as the old code filled it ---------------------------------------------


def _numbers(i: int) -> tuple[str, str, str]:
    """An ID, a card and a phone (with its country code) of call ``i``, all valid."""
    return f"11010519491231{i % 1000:03d}X", f"{CARD_PREFIX}{i:08d}", f"+86139{i:08d}"


def _call_rows(i: int, reviewer_id: int) -> dict[type[SQLModel], list[SQLModel]]:
    """Call ``i`` (ids: account and call ``i``, turns ``2i-1`` and ``2i``, entities
    ``4i-3`` to ``4i``, risk, review item and verdict ``i``), numbers in clear."""
    id_number, card, phone = _numbers(i)
    callee = f"我的身份证号{id_number}，卡号{card}，电话{phone}，钱是王强的。"
    typed_phone = f"137{i:08d}"

    def entity(n: int, label: str, text: str) -> EntityRow:
        start = callee.index(text)
        return EntityRow(
            id=4 * i - 4 + n, call_id=i, turn_idx=1, label=label, value=text, text=text,
            start=start, end=start + len(text),
        )  # fmt: skip

    evidence = {"topic": "card_custody", "node_id": "card_custody", "answer": f"卡号{card}借给朋友了", "match": "借给"}  # fmt: skip
    return {
        AccountRow: [
            AccountRow(
                id=i, account_id=f"acct-{i}", name="李娜", phone="+8613800000002",
                phone_e164="+8613800000002", card_last4="0002", scenario="suspicious_txn",
                model_score=0.8,
            )
        ],
        CallRow: [CallRow(id=i, account_pk=i, outcome="completed", error=f"gateway: transfer to {typed_phone} failed")],
        TurnRow: [
            TurnRow(
                id=2 * i - 1, call_id=i, idx=0, role="bot", node_id="identity",
                topic="identity", text="请问您是李娜本人吗？", event="say",
            ),
            TurnRow(
                id=2 * i, call_id=i, idx=1, role="callee", node_id="identity",
                topic="identity", text=callee, event="answer", intent="affirm",
                decision=f"identity confirmed by ID {id_number}",
            ),
        ],
        EntityRow: [
            entity(1, "id_number", id_number), entity(2, "card_number", card),
            entity(3, "phone", phone), entity(4, "person", "王强"),
        ],
        RiskAssessmentRow: [
            RiskAssessmentRow(
                id=i, call_id=i, score=0.9, band="high", prior=0.2, prior_contribution=-1.4,
                logit=2.2, ruleset_version="r-1", band_reason="score above 0.7",
                explanation=[{
                    "feature": "card_lent", "description": "the card is with someone else",
                    "category": "custody", "weight": 1.5, "hits": 1, "contribution": 1.5,
                    "evidence": [evidence],
                }],
            )
        ],
        ReviewItemRow: [ReviewItemRow(id=i, call_id=i, reason="suspicious", state="done")],
        VerdictRow: [
            VerdictRow(
                id=i, review_item_id=i, reviewer_id=reviewer_id, agree=False,
                corrected_disposition="suspend_all", reason=f"客户另一张卡6217003210{i:09d}也在朋友手里",
                turn_corrections=[{"turn_idx": 1, "text": f"卡借给朋友了，他电话{typed_phone}", "intent": None}],
            )
        ],
    }  # fmt: skip


def _table(model: type[SQLModel]) -> sa.Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


def fill(engine: sa.Engine, calls: int) -> None:
    """``calls`` old calls, written in bulk (``executemany``) in chunks of :data:`CHUNK`."""
    order: tuple[type[SQLModel], ...] = (
        AccountRow,
        CallRow,
        TurnRow,
        EntityRow,
        RiskAssessmentRow,
        ReviewItemRow,
        VerdictRow,
    )
    with engine.begin() as conn:
        reviewer = UserRow(id=1, username="sup-bench", password_hash="-", role="supervisor")
        conn.execute(sa.insert(_table(UserRow)), [reviewer.model_dump()])
    for first in range(1, calls + 1, CHUNK):
        rows: dict[type[SQLModel], list[dict[str, Any]]] = {model: [] for model in order}
        for i in range(first, min(first + CHUNK, calls + 1)):
            for model, objs in _call_rows(i, reviewer_id=1).items():
                rows[model] += [o.model_dump() for o in objs]
        with engine.begin() as conn:
            for model in order:
                conn.execute(sa.insert(_table(model)), rows[model])


# -- databases ------------------------------------------------------------------------


@contextmanager
def sqlite_db() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bot.db'}"


@contextmanager
def pg_db(base: str) -> Iterator[str]:
    """A fresh schema in ``base``'s database, named in the URL's ``options``."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- the run --------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rerun_seconds: float
    counts: dict[str, int]


def one_run(url: str, calls: int, batch: int, keyed: bool) -> Run:
    """Fill, mask (timed), mask again (timed) and check."""
    from bot.store.db import make_engine

    migrate.upgrade(url)  # pii_secret exists: the data step alone is timed
    engine = make_engine(url)
    try:
        fill(engine, calls)
        keys = KeyRing(os.urandom(32)) if keyed else None
        t0 = time.perf_counter()
        with engine.begin() as conn:
            counts = mask_stored(conn, keys, batch=batch)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        with engine.begin() as conn:
            again = mask_stored(conn, keys, batch=batch)
        rerun = time.perf_counter() - t0
        with engine.connect() as conn:
            clear = conn.execute(
                sa.text("SELECT count(*) FROM turn WHERE text LIKE :p"),
                {"p": f"%{CARD_PREFIX}%"},
            ).scalar_one()
    finally:
        engine.dispose()
    expected = {t: n * calls for t, n in ROWS_PER_CALL.items()}
    expected["sealed"] = SEALED_PER_CALL * calls if keyed else 0
    if counts != expected or again or clear:
        raise SystemExit(f"wrong result: {counts} (want {expected}), again {again}, clear {clear}")
    return Run(seconds, rerun, counts)


def summary(engine: str, calls: int, batch: int, keyed: bool, runs: list[Run]) -> dict[str, Any]:
    rates = sorted(calls / r.seconds for r in runs)
    seconds = statistics.median(r.seconds for r in runs)
    return {
        "engine": engine,
        "key": keyed,
        "calls": calls,
        "batch": batch,
        "repeats": len(runs),
        "seconds_p50": round(seconds, 2),
        "calls_per_s_p50": round(statistics.median(rates), 1),
        "calls_per_s_min": round(rates[0], 1),
        "calls_per_s_max": round(rates[-1], 1),
        "ms_per_call_p50": round(seconds / calls * 1000, 3),
        "sealed_per_s_p50": round(runs[0].counts["sealed"] / seconds, 1),
        "rerun_calls_per_s_p50": round(calls / statistics.median(r.rerun_seconds for r in runs), 1),
    }


COLUMNS = (
    ("engine", "engine"), ("key", "key"), ("calls", "calls"), ("batch", "batch"),
    ("seconds_p50", "s p50"), ("calls_per_s_p50", "calls/s p50"),
    ("calls_per_s_min", "min"), ("calls_per_s_max", "max"),
    ("ms_per_call_p50", "ms/call"), ("sealed_per_s_p50", "sealed/s"),
    ("rerun_calls_per_s_p50", "rerun calls/s"),
)  # fmt: skip


def print_table(rows: list[dict[str, Any]]) -> None:
    cells = [[label for _, label in COLUMNS]] + [[str(r[k]) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(row[j]) for row in cells) for j in range(len(COLUMNS))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3, help="fresh databases per setting")
    ap.add_argument("--batch", type=int, nargs="+", default=[500], help="mask_stored's batch")
    ap.add_argument("--pg", metavar="URL", help="also on PostgreSQL (a schema made and dropped)")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--keyless", action="store_true", help="also without a key (nothing sealed)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    databases: list[tuple[str, Any]] = [] if args.no_sqlite else [("sqlite", sqlite_db)]
    if args.pg:
        databases.append(("postgresql", lambda: pg_db(args.pg)))
    results = []
    for name, database in databases:
        for keyed in (True, False) if args.keyless else (True,):
            for batch in args.batch:
                runs = []
                for _ in range(args.repeat):
                    with database() as url:
                        runs.append(one_run(url, args.calls, batch, keyed))
                results.append(summary(name, args.calls, batch, keyed, runs))
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
