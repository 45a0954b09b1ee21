"""Dashboard page speed with 100,000 calls, on PostgreSQL or SQLite: p50/p95 per page
and API route.

Builds a fresh schema in the ``test`` database (or a scratch SQLite file with ``--db
sqlite``), fills it (bulk ``COPY`` on PostgreSQL, batched inserts on SQLite) with calls,
turns, entities, risk assessments, dispositions, outbox, review items, verdicts with
turn corrections, audit events cloned from the ten public personas as a real worker
records them, and the accounts' network (``entity_link``: each account's own phone, ID,
card, holder and counterparty, and what its callees named, keyed as
:mod:`bot.store.links` keys them; see :func:`_holder_links` for the shape: 1.5 % of
holders share a phone, 20 % of counterparties come from a shared pool, 8 % are one of
five mule hubs). Then it serves the real app with uvicorn on 127.0.0.1 and times every
page a user opens with an HTTP client signed in as admin: ``--warmup`` requests, then
``--n`` timed ones. Routes that answer 404 are listed as "missing".

    python bench/web_bench.py                                 # PostgreSQL, 100,000 calls
    python bench/web_bench.py --db sqlite                     # the embedded default
    python bench/web_bench.py --calls 5000 --n 10 --db sqlite # a quick look (~1 min)
    python bench/web_bench.py --keep --report bench/web_bench.json

The run measures the schema as migrated ("baseline"); ``--indexes both`` then creates the
candidate :data:`EXTRA_INDEXES` and measures again, so the report shows what each buys.
Target: every page under 200 ms (p95).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("BOT_SHARED_DIR", REPO.parent / "shared"))
PG_URL = os.environ.get("BOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "bench password, not secret"
#: Where the persona calls are placed (inside the default calling window).
PERSONA_NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)

#: Candidate indexes to try beyond the migrated schema (name -> DDL body), measured by
#: ``--indexes both``. Those that earned their place are in migration 0005.
EXTRA_INDEXES: dict[str, str] = {}

# Outcome mix of a mule-account campaign (share of calls).
OUTCOMES = {
    "completed": 0.55, "no_answer": 0.17, "busy": 0.05, "voicemail": 0.07, "refused": 0.06,
    "wrong_person": 0.04, "hung_up": 0.03, "failed": 0.03,
}  # fmt: skip
NO_TURNS = ("no_answer", "busy", "failed")
BRANCHES = ("shenzhen", "guangzhou", "shanghai", "beijing", "hangzhou", "chengdu", "wuhan",
            "xian", "nanjing", "tianjin", "chongqing", "suzhou")  # fmt: skip
ERRORS = (
    ("error", "SIP 503 Service Unavailable from gateway"),
    ("error", "media stream lost after 12 s"),
    ("worker_lost", None),
    ("error", "ASR timeout"),
)


# -- persona templates ------------------------------------------------------------------


@dataclass
class Template:
    outcome: str
    duration_s: float
    script_id: str
    script_version: int
    script_digest: str
    ruleset_version: str
    risk_score: float
    risk_band: str | None
    disposition: str
    situation: str
    needs_review: bool
    identity_confirmed: bool
    ended_by: str
    turns: list[dict[str, Any]]
    entities: list[dict[str, Any]]
    risk: dict[str, Any]
    callee_idx: list[int] = field(default_factory=list)


def persona_templates() -> list[Template]:
    """The ten public personas called once by a real worker (text mode, rules-only NLU)
    into a scratch SQLite file; their stored rows are the templates for every call."""
    from bot.campaign.recorder import account_fields
    from bot.campaign.worker import SimulatedGateway, Worker
    from bot.core.account import Account
    from bot.runtime import build_investigator
    from bot.settings import Settings
    from bot.store.db import make_engine, session_scope
    from bot.store.migrate import upgrade
    from bot.store.models import AccountRow, CampaignAccountRow, CampaignRow

    personas = [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((SHARED / "personas").glob("*.yaml"))
    ]
    url = f"sqlite:///{tempfile.mkdtemp()}/personas.db"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as s:
        c = CampaignRow(name="personas", state="running", max_attempts=1, backoff_minutes=[30])
        s.add(c)
        s.flush()
        for p in personas:
            acc = AccountRow(**account_fields(Account.model_validate(p["account"])))
            s.add(acc)
            s.flush()
            s.add(CampaignAccountRow(campaign_id=c.id or 0, account_pk=acc.id or 0,
                                     next_attempt_at=PERSONA_NOW - dt.timedelta(minutes=1)))  # fmt: skip
    gateway = SimulatedGateway({p["account"]["account_id"]: p["answers"] for p in personas})
    investigator = build_investigator(Settings(intent_model_enabled=False))
    Worker(engine, investigator, gateway, poll_s=0.01, clock=lambda: PERSONA_NOW).run(
        until_idle=True
    )
    out = []
    with engine.connect() as conn:
        for call in conn.execute(sa.text("SELECT * FROM call_attempt ORDER BY id")).mappings():
            turns = [dict(r) for r in conn.execute(
                sa.text("SELECT * FROM turn WHERE call_id = :c ORDER BY idx"), {"c": call["id"]}
            ).mappings()]  # fmt: skip
            entities = [dict(r) for r in conn.execute(
                sa.text("SELECT * FROM extracted_entity WHERE call_id = :c"), {"c": call["id"]}
            ).mappings()]  # fmt: skip
            risk = dict(conn.execute(
                sa.text("SELECT * FROM risk_assessment WHERE call_id = :c"), {"c": call["id"]}
            ).mappings().one())  # fmt: skip
            disp = conn.execute(
                sa.text("SELECT situation FROM disposition WHERE call_id = :c"), {"c": call["id"]}
            ).scalar_one()
            out.append(
                Template(
                    outcome=call["outcome"],
                    duration_s=call["duration_s"],
                    script_id=call["script_id"],
                    script_version=call["script_version"],
                    script_digest=call["script_digest"],
                    ruleset_version=call["ruleset_version"],
                    risk_score=call["risk_score"],
                    risk_band=call["risk_band"],
                    disposition=call["disposition"],
                    situation=disp,
                    needs_review=bool(call["needs_review"]),
                    identity_confirmed=bool(call["identity_confirmed"]),
                    ended_by=call["ended_by"] or "bot",
                    turns=turns,
                    entities=entities,
                    risk=risk,
                    callee_idx=[t["idx"] for t in turns if t["role"] == "callee"],
                )
            )
    engine.dispose()
    return out


# -- data -------------------------------------------------------------------------------


class Ids:
    """Explicit primary keys (COPY does not return them); sequences are set afterwards."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def __call__(self, table: str) -> int:
        n = self.next.get(table, 0) + 1
        self.next[table] = n
        return n


@dataclass
class Batch:
    """Rows per table, in COPY column order."""

    columns: dict[str, tuple[str, ...]]
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, table: str, *values: Any) -> None:
        self.rows.setdefault(table, []).append(values)


COLUMNS: dict[str, tuple[str, ...]] = {
    "campaign": ("id", "name", "state", "max_attempts", "backoff_minutes", "window_start",
                 "window_end", "weekdays", "holidays", "max_concurrency", "created_at",
                 "started_at", "finished_at"),
    "account": ("id", "account_id", "name", "phone", "phone_e164", "card_last4", "id_number",
                "scenario", "model_score", "branch", "gender", "timezone", "txn_amount",
                "txn_date", "txn_counterparty", "extra", "created_at", "updated_at"),
    "campaign_account": ("id", "campaign_id", "account_pk", "state", "attempts",
                         "next_attempt_at", "lease_owner", "lease_expires_at", "last_outcome",
                         "final_disposition", "updated_at"),
    "call_attempt": ("id", "campaign_account_id", "account_pk", "attempt_no", "worker_id",
                     "started_at", "ended_at", "duration_s", "outcome", "ended_by", "script_id",
                     "script_version", "script_digest", "ruleset_version", "risk_score",
                     "risk_band", "disposition", "needs_review", "identity_confirmed",
                     "recording_path", "error", "latency_p50_ms", "latency_p95_ms"),
    "turn": ("call_id", "idx", "role", "at_s", "node_id", "topic", "text", "event", "intent",
             "intent_confidence", "intent_source", "decision", "latency_ms"),
    "extracted_entity": ("call_id", "turn_idx", "label", "value", "text", "start", "end",
                         "negated"),
    "risk_assessment": ("call_id", "score", "band", "prior", "prior_contribution", "logit",
                        "severe", "ruleset_version", "band_reason", "explanation"),
    "disposition": ("id", "call_id", "account_pk", "disposition", "situation", "needs_review",
                    "sampled", "source", "created_at"),
    "outbox": ("disposition_id", "idempotency_key", "kind", "payload", "state", "attempts",
               "next_attempt_at", "last_error", "created_at", "delivered_at"),
    "review_item": ("id", "call_id", "reason", "state", "claimed_by", "claimed_at",
                    "created_at"),
    "verdict": ("review_item_id", "reviewer_id", "agree", "corrected_band",
                "corrected_disposition", "reason", "turn_corrections", "created_at"),
    "audit_event": ("at", "actor", "action", "object_type", "object_id", "detail"),
    "entity_link": ("account_pk", "call_id", "entity_id", "kind", "origin", "link_key", "shown",
                    "key_id", "created_at"),
}  # fmt: skip
ORDER = tuple(COLUMNS)
CORRECTED_INTENTS = ("deny", "refuse", "unclear", "custody_lent", "inform", "affirm")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
)
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
         "明", "超", "秀英", "霞", "平", "刚", "桂英", "建华", "晓东", "志强", "海燕", "玉兰", "文",
         "斌", "婷", "鹏", "辉", "雪", "琳", "浩", "宇", "欣怡", "子涵", "俊杰", "梓萱")  # fmt: skip
#: The five mule hubs: counterparties named by many unrelated holders.
HUBS = (
    "深圳市鑫达商贸有限公司",
    "广州恒通物流有限公司",
    "赵国庆",
    "钱多多",
    "上海汇丰源科技有限公司",
)
#: The bench's link key (numbers are linked by keyed hash, as with a PII key configured).
LINK_KEY_BYTES = b"web-bench-link-key-32-bytes-long"


@dataclass
class Plan:
    calls: int
    campaigns: int
    now: dt.datetime
    days: int = 60
    seed: int = 20261201

    @property
    def shared_counterparties(self) -> int:
        """Counterparty names several holders share (about 40 holders each)."""
        return max(20, self.calls // 200)

    @property
    def shared_phones(self) -> int:
        """Phones several callees name (a handful of callees each)."""
        return max(10, self.calls // 500)


def generate(
    plan: Plan, templates: Sequence[Template], reviewer_ids: Sequence[int]
) -> Iterator[Batch]:
    """Rows in batches of about 5,000 calls (with everything they produced)."""
    rng = random.Random(plan.seed)
    ids = Ids()
    now = plan.now
    by_outcome: dict[str, list[Template]] = {}
    for t in templates:
        by_outcome.setdefault(t.outcome, []).append(t)
    connected = [t for t in templates if t.outcome == "completed"]
    first = Batch(COLUMNS)
    campaign_ids = []
    for i in range(plan.campaigns):
        cid = ids("campaign")
        state = "running" if i < 2 else "paused" if i == 2 else "completed"
        created = now - dt.timedelta(days=plan.days - i * (plan.days // plan.campaigns))
        first.add("campaign", cid, f"bench-{i:02d}-{('dormant', 'mules', 'new')[i % 3]}", state,
                  3, "[30, 120]", "09:00", "20:00", "[1, 2, 3, 4, 5]", "[]", 10, created,
                  created, None if state != "completed" else now - dt.timedelta(days=1))  # fmt: skip
        campaign_ids.append(cid)
    # Waiting and live work items of the running campaigns (no calls yet).
    for k in range(max(plan.calls // 30, 10)):
        cid = campaign_ids[k % 2] if plan.campaigns > 1 else campaign_ids[0]
        acc = _account(first, ids, rng, plan)
        state = "in_progress" if k % 150 == 0 else "queued"
        lease = now + dt.timedelta(seconds=60) if state == "in_progress" else None
        if state == "in_progress" and k % 600 == 0:
            lease = now - dt.timedelta(minutes=5)  # a dead worker's item
        first.add("campaign_account", ids("campaign_account"), cid, acc, state, 0,
                  now + dt.timedelta(minutes=k % 90), "bench-worker" if lease else None, lease,
                  None, None, now)  # fmt: skip
    yield first
    batch = Batch(COLUMNS)
    for n in range(plan.calls):
        _one_call(batch, ids, rng, plan, campaign_ids, by_outcome, connected, reviewer_ids)
        if (n + 1) % 5000 == 0:
            yield batch
            batch = Batch(COLUMNS)
    for k in range(plan.calls // 5):  # audit trail: logins, views, verdicts
        at = now - dt.timedelta(seconds=rng.uniform(0, plan.days * 86400))
        action = rng.choice(("login", "view_call", "view_call", "verdict", "reveal_pii"))
        batch.add("audit_event", at, rng.choice(("lin", "wang", "zhao", "admin")), action,
                  "call", str(rng.randint(1, plan.calls)), json.dumps({"n": k}))  # fmt: skip
    yield batch


def _account(b: Batch, ids: Ids, rng: random.Random, plan: Plan) -> int:
    now = plan.now
    pk = ids("account")
    # 1.5 % of holders give a phone another holder gave too (family, or a mule's handler).
    phone = f"138{rng.randint(1, pk):08d}" if pk > 1 and rng.random() < 0.015 else f"138{pk:08d}"
    name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    r = rng.random()
    if r < 0.08:
        counterparty = rng.choice(HUBS)
    elif r < 0.28:
        counterparty = f"对手{rng.randrange(plan.shared_counterparties):04d}"
    else:
        counterparty = f"商户{pk}"
    id_number = f"4401{pk:013d}X"
    b.add("account", pk, f"6222{pk:012d}", name, phone, f"+86{phone}", f"{pk % 10000:04d}",
          id_number, rng.choice(("dormant", "new_account", "suspicious_txn")),
          round(rng.random(), 3), rng.choice(BRANCHES), rng.choice(("M", "F")), "Asia/Shanghai",
          round(rng.uniform(1000, 90000), 2), (now - dt.timedelta(days=20)).date(), counterparty,
          "{}", now, now)  # fmt: skip
    _holder_links(b, pk, phone, id_number, name, counterparty, now)
    return pk


_LINK_KEY: Any = None


def _link_key() -> Any:
    global _LINK_KEY
    if _LINK_KEY is None:
        from bot.store.links import LinkKey

        _LINK_KEY = LinkKey(LINK_KEY_BYTES)
    return _LINK_KEY


def _link(
    b: Batch, pk: int, call_id: int | None, kind: str, origin: str, value: str, now: dt.datetime
) -> None:
    """One ``entity_link`` row as :mod:`bot.store.links` writes it (a number by its keyed
    hash and masked form, a name by its text)."""
    from bot.store.links import node

    found = node(kind, value, _link_key())
    if found is not None:
        b.add("entity_link", pk, call_id, None, kind, origin, found[0], found[1], found[2], now)


def _holder_links(
    b: Batch, pk: int, phone: str, id_number: str, name: str, counterparty: str, now: dt.datetime
) -> None:
    """The links ``links.refresh_account`` writes for an account's own data."""
    _link(b, pk, None, "phone", "holder", phone, now)
    _link(b, pk, None, "id_number", "holder", id_number, now)
    _link(b, pk, None, "card", "holder", f"6222{pk:012d}", now)
    _link(b, pk, None, "person", "holder", name, now)
    _link(b, pk, None, "person", "counterparty", counterparty, now)


def _said_links(
    b: Batch, rng: random.Random, plan: Plan, pk: int, call_id: int, started: dt.datetime
) -> None:
    """What a connected callee named (half of them name one or two things): a phone
    (4 % from a small shared pool, the rest their own), a person (mostly nobody else's,
    5 % a hub) or an employer."""
    if rng.random() >= 0.5:
        return
    for _ in range(rng.randint(1, 2)):
        r = rng.random()
        if r < 0.45:
            shared = rng.random() < 0.04
            n = rng.randrange(plan.shared_phones) if shared else rng.randrange(10**8)
            _link(b, pk, call_id, "phone", "said", f"139{n:08d}", started)
        elif r < 0.9:
            person = (
                rng.choice(HUBS) if rng.random() < 0.05 else f"人{rng.randrange(4 * plan.calls)}"
            )
            _link(b, pk, call_id, "person", "said", person, started)
        else:
            _link(b, pk, call_id, "employer", "said", f"公司{rng.randrange(plan.calls)}", started)


def _one_call(
    b: Batch,
    ids: Ids,
    rng: random.Random,
    plan: Plan,
    campaign_ids: Sequence[int],
    by_outcome: dict[str, list[Template]],
    connected: Sequence[Template],
    reviewer_ids: Sequence[int],
) -> None:
    now = plan.now
    outcome = rng.choices(list(OUTCOMES), weights=list(OUTCOMES.values()))[0]
    recent = rng.random() < 0.03
    age = rng.uniform(0, 86400) if recent else rng.uniform(0, plan.days * 86400)
    started = now - dt.timedelta(seconds=age)
    campaign = campaign_ids[
        min(int(age / (plan.days * 86400) * len(campaign_ids)), len(campaign_ids) - 1)
    ]
    if recent:
        campaign = campaign_ids[rng.randrange(min(2, len(campaign_ids)))]
    acc = _account(b, ids, rng, plan)
    item = ids("campaign_account")
    call_id = ids("call_attempt")
    t = rng.choice(by_outcome.get(outcome) or list(connected))
    turns = [] if outcome in NO_TURNS else t.turns
    if outcome == "hung_up":
        turns = turns[: max(2, len(turns) // 2)]
    voice = rng.random() < 0.9
    duration = {"no_answer": 30.0, "busy": 3.0, "failed": rng.uniform(1, 8)}.get(
        outcome, t.duration_s * rng.uniform(0.8, 1.25)
    )
    ended_by, error = rng.choice(ERRORS) if outcome == "failed" else (t.ended_by, None)
    band = t.risk_band if outcome not in NO_TURNS else None
    disposition = "retry_call" if outcome in NO_TURNS else t.disposition
    needs_review = t.needs_review and outcome not in NO_TURNS
    sampled = not needs_review and outcome == "completed" and rng.random() < 0.03
    p50 = rng.lognormvariate(6.5, 0.25) if voice and turns else None
    b.add("campaign_account", item, campaign, acc, "done" if disposition != "retry_call" else "queued",
          1, started + dt.timedelta(hours=2), None, None, outcome,
          None if disposition == "retry_call" else disposition, started)  # fmt: skip
    b.add("call_attempt", call_id, item, acc, 1, "bench-worker", started,
          started + dt.timedelta(seconds=duration), duration, outcome, ended_by, t.script_id,
          t.script_version, t.script_digest, t.ruleset_version,
          t.risk_score if band else None, band, disposition, needs_review or sampled,
          t.identity_confirmed and bool(turns),
          f"recordings/{call_id}.wav" if voice and outcome not in NO_TURNS else None, error,
          p50, p50 + rng.uniform(100, 900) if p50 else None)  # fmt: skip
    for tr in turns:
        b.add("turn", call_id, tr["idx"], tr["role"], tr["at_s"], tr["node_id"], tr["topic"],
              tr["text"], tr["event"], tr["intent"], tr["intent_confidence"], tr["intent_source"],
              tr["decision"], (p50 or 0) * rng.uniform(0.7, 1.4) if p50 and tr["role"] == "bot" else None)  # fmt: skip
    kept = {tr["idx"] for tr in turns}
    for e in t.entities:
        if e["turn_idx"] in kept:
            b.add("extracted_entity", call_id, e["turn_idx"], e["label"], e["value"], e["text"],
                  e["start"], e["end"], bool(e["negated"]))  # fmt: skip
    if turns and outcome in ("completed", "hung_up", "refused"):
        _said_links(b, rng, plan, acc, call_id, started)
    r = t.risk
    b.add("risk_assessment", call_id, r["score"] if turns else r["prior"], band, r["prior"],
          r["prior_contribution"], r["logit"], bool(r["severe"]) and bool(turns),
          r["ruleset_version"], r["band_reason"], r["explanation"] if turns else "[]")  # fmt: skip
    disp_id = ids("disposition")
    b.add("disposition", disp_id, call_id, acc, disposition, t.situation if turns else outcome,
          needs_review, sampled, "bot", started)  # fmt: skip
    if disposition != "retry_call":
        state = rng.choices(("delivered", "pending", "dead"), weights=(97, 2, 1))[0]
        b.add("outbox", disp_id, f"{call_id}:{disp_id}", "disposition",
              json.dumps({"call_id": call_id, "disposition": disposition}), state,
              1 if state == "delivered" else 3, started, None if state != "dead" else "HTTP 500",
              started, started + dt.timedelta(seconds=5) if state == "delivered" else None)  # fmt: skip
    if needs_review or sampled:
        _review(
            b,
            ids,
            rng,
            now,
            call_id,
            started,
            t,
            turns,
            "sample" if sampled else "suspicious",
            reviewer_ids,
        )


def _review(
    b: Batch, ids: Ids, rng: random.Random, now: dt.datetime, call_id: int, started: dt.datetime,
    t: Template, turns: Sequence[dict[str, Any]], reason: str, reviewer_ids: Sequence[int],
) -> None:  # fmt: skip
    item = ids("review_item")
    old = (now - started).total_seconds() > 2 * 86400
    state = rng.choices(("done", "open", "claimed"), weights=(85, 10, 5) if old else (20, 70, 10))[
        0
    ]
    reviewer = rng.choice(reviewer_ids)
    b.add("review_item", item, call_id, reason, state, reviewer if state != "open" else None,
          started + dt.timedelta(hours=1) if state != "open" else None, started)  # fmt: skip
    if state != "done":
        return
    agree = rng.random() < 0.8
    callee = [tr for tr in turns if tr["role"] == "callee"]
    fixes = []
    if callee and (not agree or rng.random() < 0.15):
        for tr in rng.sample(callee, k=min(len(callee), rng.randint(1, 2))):
            intent = rng.choice(CORRECTED_INTENTS)
            fixes.append({"turn_idx": tr["idx"], "text": None if rng.random() < 0.6 else tr["text"] + "（更正）",
                          "intent": intent if intent != tr["intent"] else None})  # fmt: skip
    at = min(started + dt.timedelta(hours=rng.uniform(1, 48)), now)
    b.add("verdict", item, reviewer, agree, None if agree else "low",
          None if agree else "monitor", "" if agree else "callee explained the transfers",
          json.dumps(fixes, ensure_ascii=False), at)  # fmt: skip


def copy_batch(raw: Any, batch: Batch) -> int:
    n = 0
    with raw.cursor() as cur:
        for table in ORDER:
            rows = batch.rows.get(table)
            if not rows:
                continue
            cols = ", ".join(f'"{c}"' for c in COLUMNS[table])
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            n += len(rows)
    return n


def insert_batch(conn: sa.engine.Connection, batch: Batch) -> int:
    """SQLite: batched inserts through the tables' types (JSON columns get the parsed
    value, datetimes the engine's own format), in foreign-key order."""
    from sqlmodel import SQLModel

    n = 0
    for table in ORDER:
        rows = batch.rows.get(table)
        if not rows:
            continue
        t = SQLModel.metadata.tables[table]
        cols = COLUMNS[table]
        json_cols = {i for i, c in enumerate(cols) if isinstance(t.c[c].type, sa.JSON)}
        dicts = [
            {c: json.loads(v) if i in json_cols and isinstance(v, str) else v
             for i, (c, v) in enumerate(zip(cols, row, strict=True))}
            for row in rows
        ]  # fmt: skip
        conn.execute(sa.insert(t), dicts)
        n += len(rows)
    return n


def build(engine: sa.engine.Engine, plan: Plan, log: Callable[[str], None]) -> dict[str, int]:
    """Create the users and fill the schema; returns row counts per table."""
    from sqlmodel import Session

    from bot.web.security import create_user

    with Session(engine) as s:
        create_user(s, "admin", PASSWORD, "admin")
        reviewers = [create_user(s, f"rev{i}", PASSWORD, "reviewer").id or 0 for i in range(4)]
        s.commit()
    t0 = time.perf_counter()
    templates = persona_templates()
    log(f"persona templates: {len(templates)} calls in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    total = 0
    pg = engine.dialect.name == "postgresql"
    if pg:
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert conn is not None
            for batch in generate(plan, templates, reviewers):
                total += copy_batch(conn, batch)
            conn.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as sconn:
            for batch in generate(plan, templates, reviewers):
                total += insert_batch(sconn, batch)
    with engine.begin() as conn:
        for table in ORDER if pg else ():
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            ))  # fmt: skip
    # Statistics, and on PostgreSQL the visibility map autovacuum keeps after bulk inserts
    # (index-only scans need it): the steady state of a database in use.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE" if pg else "ANALYZE"))
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ORDER}
    log(f"loaded {total:,} rows in {time.perf_counter() - t0:.1f} s")
    return counts


# -- timing -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """The real app under uvicorn in a thread on 127.0.0.1."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        import uvicorn

        from bot.settings import Settings
        from bot.web.app import create_app
        from bot.web.config import WebSettings

        settings = Settings(web=WebSettings(secure_cookies=False, session_idle_minutes=600))
        self.port = free_port()
        app = create_app(settings, engine)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def pages(engine: sa.engine.Engine) -> list[tuple[str, str]]:
    """(name, path) of every dashboard page and API list route to time."""
    with engine.connect() as conn:
        campaign = conn.execute(sa.text("SELECT id, name FROM campaign ORDER BY id LIMIT 1")).one()
        call_id = conn.execute(sa.text(
            "SELECT call_id FROM review_item WHERE state = 'done' ORDER BY call_id DESC LIMIT 1"
        )).scalar_one()  # fmt: skip
        item_id = conn.execute(sa.text(
            "SELECT id FROM review_item WHERE state = 'open' ORDER BY id LIMIT 1"
        )).scalar_one()  # fmt: skip
        day = conn.execute(sa.text("SELECT max(started_at) FROM call_attempt")).scalar_one()
        holder = conn.execute(sa.text(
            "SELECT a.name, a.phone FROM call_attempt c JOIN account a ON a.id = c.account_pk "
            "WHERE c.id = :c"), {"c": call_id}).one()  # fmt: skip
        hub = conn.execute(sa.text(
            "SELECT min(l.account_pk) FROM entity_link l JOIN call_attempt c "
            "ON c.account_pk = l.account_pk WHERE l.origin = 'counterparty' AND l.link_key = :h"
        ), {"h": HUBS[0]}).scalar_one()  # fmt: skip
        ordinary = conn.execute(sa.text(
            "SELECT max(l.account_pk) FROM entity_link l JOIN call_attempt c "
            "ON c.account_pk = l.account_pk WHERE l.origin = 'counterparty' "
            "AND l.link_key LIKE '商户%' AND c.outcome = 'completed' AND NOT EXISTS ("
            "SELECT 1 FROM entity_link s WHERE s.account_pk = l.account_pk AND s.origin = 'said')"
        )).scalar_one()  # fmt: skip
    if isinstance(day, str):  # SQLite through text(): the stored form
        day = dt.datetime.fromisoformat(day)
    d_from = (day - dt.timedelta(days=14)).date().isoformat()
    last4 = holder.phone[-4:]
    return [
        ("home", "/"),
        ("monitor", "/monitor"),
        ("monitor, one campaign", f"/monitor?campaign={campaign.name}"),
        ("monitor big screen", "/monitor/screen"),
        ("API monitor", "/api/v1/monitor"),
        ("feedback", "/feedback"),
        ("feedback, 365 days", "/feedback?days=365"),
        ("API feedback", "/api/v1/feedback"),
        ("calls", "/calls"),
        ("calls, page 200", "/calls?page=200"),
        ("calls, band+outcome", "/calls?band=high&outcome=completed"),
        ("calls, campaign+disposition+dates",
         f"/calls?campaign={campaign.id}&disposition=clear&date_from={d_from}"),
        ("calls, branch+review", "/calls?branch=wuhan&review=done"),
        ("calls, q= last 4 phone digits", f"/calls?q={last4}"),
        ("calls, q= holder name", f"/calls?q={holder.name}"),
        ("calls, by score", "/calls?sort=score"),
        ("API calls", "/api/v1/calls"),
        ("API calls, filtered", "/api/v1/calls?band=medium&review=open"),
        ("API calls, q= last 4 digits", f"/api/v1/calls?q={last4}"),
        ("call detail", f"/calls/{call_id}"),
        ("API call detail", f"/api/v1/calls/{call_id}"),
        ("review queue", "/review"),
        ("review item", f"/review/{item_id}"),
        ("API review queue", "/api/v1/review"),
        ("audit log", "/audit"),
        ("audit log, actor", "/audit?actor=lin"),
        ("API audit", "/api/v1/audit"),
        ("workspace", "/workspace"),
        ("network groups", "/network"),
        ("API network groups", "/api/v1/network/groups"),
        ("account network, hub member", f"/accounts/{hub}/network"),
        ("API account network, hub member", f"/api/v1/accounts/{hub}/network"),
        ("account network, ordinary", f"/accounts/{ordinary}/network"),
        ("API account network, ordinary", f"/api/v1/accounts/{ordinary}/network"),
    ]  # fmt: skip


@dataclass
class Timing:
    name: str
    path: str
    status: str
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    bytes: int = 0


def time_pages(base: str, targets: Sequence[tuple[str, str]], n: int, warmup: int) -> list[Timing]:
    import httpx

    out = []
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post("/api/v1/session", json={"username": "admin", "password": PASSWORD})
        r.raise_for_status()
        for name, path in targets:
            first = client.get(path)
            if first.status_code == 404 and not path.startswith("/api/v1/calls/"):
                out.append(Timing(name, path, "missing"))
                continue
            if first.status_code != 200:
                out.append(Timing(name, path, f"HTTP {first.status_code}"))
                continue
            for _ in range(max(warmup - 1, 0)):
                client.get(path)
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                r = client.get(path)
                samples.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (path, r.status_code)
            samples.sort()
            out.append(
                Timing(
                    name,
                    path,
                    "ok",
                    p50_ms=statistics.median(samples),
                    p95_ms=samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))],
                    max_ms=samples[-1],
                    bytes=len(first.content),
                )
            )
    return out


def time_feedback_computation(engine: sa.engine.Engine, n: int = 5) -> dict[str, float]:
    """The feedback figures computed from scratch (what the page's cache does in the
    background after new verdicts, and on the first view of a period)."""
    from sqlmodel import Session

    from bot.web.stats import feedback

    samples = []
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session:
        for _ in range(n):
            t0 = time.perf_counter()
            feedback(session, now, 90)
            samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 1), "max_ms": round(samples[-1], 1)}


#: The monitor's queries, timed one by one by :func:`time_monitor_computation`.
MONITOR_PARTS = (
    "queue_counts", "call_figures", "latency_percentiles", "window_rates_by_campaign",
    "window_rates", "stalled_alerts", "hourly_calls", "failure_reasons",
)  # fmt: skip


def time_monitor_computation(engine: sa.engine.Engine, n: int = 5) -> dict[str, Any]:
    """The monitor's figures (all campaigns, the default week) computed from scratch, as
    the page's cache does on a first view and then in the background every
    ``web.monitor_fresh_s``; with the median time of each of its queries."""
    from sqlmodel import Session

    from bot.web import stats
    from bot.web.config import MonitorThresholds

    parts: dict[str, list[float]] = {name: [] for name in MONITOR_PARTS}
    originals = {name: getattr(stats, name) for name in MONITOR_PARTS}

    def timed(name: str) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return originals[name](*a, **k)
            finally:
                parts[name].append((time.perf_counter() - t0) * 1000)

        return run

    samples = []
    now = dt.datetime.now(dt.UTC)
    try:
        for name in MONITOR_PARTS:
            setattr(stats, name, timed(name))
        with Session(engine) as session:
            for _ in range(n):
                t0 = time.perf_counter()
                stats.monitor(session, now, MonitorThresholds())
                samples.append((time.perf_counter() - t0) * 1000)
    finally:
        for name, fn in originals.items():
            setattr(stats, name, fn)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1), "max_ms": round(samples[-1], 1),
        "parts_p50_ms": {k: round(statistics.median(v), 1) for k, v in parts.items() if v},
    }  # fmt: skip


def time_groups_computation(engine: sa.engine.Engine, n: int = 3) -> dict[str, Any]:
    """The network groups computed from scratch (what the page does once a minute, or
    after new links: the dashboard's groups cache keeps them a minute)."""
    from sqlmodel import Session

    from bot.store.links import groups

    samples = []
    largest = 0
    with Session(engine) as session:
        for _ in range(n):
            t0 = time.perf_counter()
            found = groups(session)
            samples.append((time.perf_counter() - t0) * 1000)
            largest = found[0].accounts if found else 0
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 1), "max_ms": round(samples[-1], 1),
            "largest_group": largest}  # fmt: skip


def create_indexes(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        for name, body in EXTRA_INDEXES.items():
            conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON {body}"))
        conn.execute(sa.text("ANALYZE"))


def show(runs: dict[str, list[Timing]], target_ms: float) -> None:
    from rich.console import Console
    from rich.table import Table

    names = list(runs)
    table = Table(title=f"Dashboard pages (target p95 < {target_ms:.0f} ms)")
    table.add_column("page")
    table.add_column("path", overflow="fold")
    for name in names:
        table.add_column(f"{name} p50", justify="right")
        table.add_column(f"{name} p95", justify="right")
    first = runs[names[0]]
    for i, t in enumerate(first):
        cells = [t.name, t.path]
        for name in names:
            x = runs[name][i]
            if x.status != "ok":
                cells += [x.status, ""]
            else:
                style = "red" if (x.p95_ms or 0) >= target_ms else "green"
                cells += [f"{x.p50_ms:.0f}", f"[{style}]{x.p95_ms:.0f}[/{style}]"]
        table.add_row(*cells)
    Console(width=max(140, 40 + 24 * len(names))).print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--db", default=PG_URL,
                    help="a PostgreSQL URL (a schema is created in it), 'sqlite' (a scratch "
                         "file) or a sqlite:/// URL")  # fmt: skip
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--campaigns", type=int, default=8)
    ap.add_argument("--n", type=int, default=30, help="timed requests per page")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--indexes", choices=("both", "on", "off"), default="off")
    ap.add_argument("--schema", help="reuse this already built schema or SQLite file (no build)")
    ap.add_argument("--keep", action="store_true", help="keep the schema or file afterwards")
    ap.add_argument("--report", type=Path, help="write the results as JSON here")
    ap.add_argument("--target-ms", type=float, default=200.0)
    ap.add_argument("--pages", help="time only the pages whose name contains this (e.g. review)")
    args = ap.parse_args()

    from bot.store.db import make_engine
    from bot.store.migrate import upgrade_connection

    def log(msg: str) -> None:
        print(f"[web_bench] {msg}", flush=True)

    sqlite = args.db == "sqlite" or args.db.startswith("sqlite")
    admin: sa.engine.Engine | None = None
    if sqlite:
        path = args.schema or (
            args.db.split("///", 1)[1] if args.db.startswith("sqlite:///")
            else f"{tempfile.mkdtemp(prefix='webbench_')}/bench.db"
        )  # fmt: skip
        schema = path
        engine = make_engine(f"sqlite:///{path}")
    else:
        admin = sa.create_engine(args.db)
        schema = args.schema or f"webbench_{uuid.uuid4().hex[:8]}"
        engine = make_engine(args.db, connect_args={"options": f"-csearch_path={schema}"})
    counts: dict[str, int] = {}
    build_s = 0.0
    try:
        if not args.schema:
            if admin is not None:
                with admin.begin() as conn:
                    conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            with engine.begin() as conn:
                upgrade_connection(conn)
            t0 = time.perf_counter()
            plan = Plan(calls=args.calls, campaigns=args.campaigns,
                        now=dt.datetime.now(dt.UTC).replace(microsecond=0))  # fmt: skip
            counts = build(engine, plan, log)
            build_s = time.perf_counter() - t0
            log(
                f"{engine.dialect.name} {schema}: "
                + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            )
        targets = [t for t in pages(engine) if not args.pages or args.pages in t[0]]
        runs: dict[str, list[Timing]] = {}
        with Server(engine) as base:
            if args.indexes in ("both", "off"):
                log("timing without the extra indexes")
                runs["baseline"] = time_pages(base, targets, args.n, args.warmup)
            if args.indexes in ("both", "on"):
                create_indexes(engine)
                log("timing with the extra indexes")
                runs["indexed"] = time_pages(base, targets, args.n, args.warmup)
        show(runs, args.target_ms)
        computed = time_feedback_computation(engine)
        log(f"feedback computed from scratch (cache refresh, 90 days): {computed}")
        monitored = time_monitor_computation(engine)
        log(f"monitor computed from scratch (cache refresh, 7 days): {monitored}")
        grouped = time_groups_computation(engine)
        log(f"network groups computed from scratch (kept a minute): {grouped}")
        if args.report:
            args.report.write_text(json.dumps({
                "engine": engine.dialect.name, "calls": args.calls, "n": args.n,
                "warmup": args.warmup, "schema": schema,
                "build_s": round(build_s, 1), "rows": counts, "target_ms": args.target_ms,
                "extra_indexes": EXTRA_INDEXES, "feedback_computation": computed,
                "groups_computation": grouped, "monitor_computation": monitored,
                "runs": {k: [t.__dict__ for t in v] for k, v in runs.items()},
            }, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")  # fmt: skip
            log(f"report written to {args.report}")
    finally:
        engine.dispose()
        if not args.keep and not args.schema:
            if admin is not None:
                with admin.begin() as conn:
                    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            else:
                Path(schema).unlink(missing_ok=True)
                for extra in ("-wal", "-shm"):
                    Path(schema + extra).unlink(missing_ok=True)
        if admin is not None:
            admin.dispose()


if __name__ == "__main__":
    main()
