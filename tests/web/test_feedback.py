"""Feedback statistics and the training-data export, on both databases: role checks,
agreement rates recomputed independently from verdicts on real calls, worst-first
ordering, the latest verdict per item, masked JSONL lines and their audit event."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.core.vocab import Intent
from bot.store.models import (
    AuditEventRow,
    CallRow,
    ReviewItemRow,
    RiskAssessmentRow,
    TurnRow,
    VerdictRow,
)
from nlu.reading.corpus import parse_row
from tests.web.conftest import login
from tests.web.factories import populate

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)  # the test clock
CARD = "6225880100000002"
PHONE = "13912345678"
PATHS = ("/feedback", "/api/v1/feedback", "/feedback/training.jsonl")


def callee_turns(s: Session, call_id: int) -> list[TurnRow]:
    return list(
        s.exec(
            select(TurnRow)
            .where(TurnRow.call_id == call_id, TurnRow.role == "callee")
            .order_by(TurnRow.idx)  # type: ignore[arg-type]
        ).all()
    )


def give_verdicts(engine: Engine, reviewer_id: int) -> dict[str, Any]:
    """Verdicts on every review item of ``populate``: alternately agree / overturn, with
    turn corrections (text with PII, intent, both, and one on a bot turn), an older
    verdict superseded on one item, and one verdict too old for the default 90 days."""
    made: dict[str, Any] = {"corrections": {}, "verdicts": []}
    with Session(engine) as s:
        items = s.exec(select(ReviewItemRow).order_by(ReviewItemRow.id)).all()  # type: ignore[arg-type]
        assert len(items) >= 5
        for n, item in enumerate(items):
            turns = callee_turns(s, item.call_id)
            corrections: list[dict[str, Any]] = []
            if n == 0:
                corrections = [
                    {"turn_idx": turns[0].idx, "text": f"不是我，卡号{CARD}", "intent": "deny"},
                    {"turn_idx": turns[1].idx, "text": f"打{PHONE}找我", "intent": None},
                    {"turn_idx": 0, "text": "bot line fixed", "intent": None},  # a bot turn
                ]
            elif n == 1:
                corrections = [
                    {
                        "turn_idx": turns[-1].idx,
                        "text": None,
                        "intent": "refuse",
                        "reading": ["acts=refuse"],
                    }
                ]
            created = NOW - dt.timedelta(days=n * 8)  # different weeks
            if n == len(items) - 1:
                created = NOW - dt.timedelta(days=120)  # outside the default window
            if n == 2:  # superseded: an earlier, opposite verdict on the same item
                s.add(VerdictRow(review_item_id=item.id or 0, reviewer_id=reviewer_id,
                                 agree=True, created_at=created - dt.timedelta(hours=1)))  # fmt: skip
            v = VerdictRow(
                review_item_id=item.id or 0, reviewer_id=reviewer_id, agree=n % 2 == 1,
                corrected_band=None if n % 2 else "low", reason="" if n % 2 else "not mules",
                turn_corrections=corrections, created_at=created,
            )  # fmt: skip
            s.add(v)
            item.state = "done"
            s.add(item)
            if n != len(items) - 1:
                made["verdicts"].append((item.call_id, v.agree, created))
                made["corrections"][item.call_id] = {c["turn_idx"]: c for c in corrections}
        s.commit()
    return made


def expected(engine: Engine, made: dict[str, Any]) -> dict[str, dict[str, tuple[int, int]]]:
    """(agreed, total) per script, step, rule and intent, recomputed from the rows."""
    out: dict[str, dict[str, list[int]]] = {
        k: defaultdict(lambda: [0, 0]) for k in ("script", "step", "rule", "intent")
    }
    with Session(engine) as s:
        for call_id, agree, _ in made["verdicts"]:
            call = s.get(CallRow, call_id)
            assert call is not None
            fixes = made["corrections"][call_id]
            _count(out["script"][f"{call.script_id}@v{call.script_version}"], agree)
            ra = s.exec(select(RiskAssessmentRow).where(RiskAssessmentRow.call_id == call_id)).one()
            for feature in {h["feature"] for h in ra.explanation}:
                _count(out["rule"][feature], agree)
            for t in callee_turns(s, call_id):
                fix = fixes.get(t.idx)
                _count(out["step"][f"{call.script_id}:{t.node_id}"], fix is None)
                if t.intent is not None:
                    changed = fix is not None and fix["intent"] not in (None, t.intent)
                    _count(out["intent"][t.intent], not changed)
    return {k: {key: (a, n) for key, (a, n) in v.items()} for k, v in out.items()}


def _count(cell: list[int], ok: bool) -> None:
    cell[0] += int(ok)
    cell[1] += 1


def table(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    return {r["key"]: (r["agreed"], r["total"]) for r in rows}


def test_roles_and_no_state_change_on_get(app_client: TestClient, engine: Engine) -> None:
    for path in PATHS:
        assert app_client.get(path).status_code == (401 if "/api/" in path else 303)
    login(app_client, "reviewer")
    for path in PATHS:
        r = app_client.get(path)
        assert r.status_code == 403 and "view_feedback" in r.text, path
    for name in ("compliance", "supervisor", "admin"):
        login(app_client, name)
        with engine.connect() as conn:
            before = conn.execute(sa.text("SELECT count(*) FROM audit_event")).scalar()
        for path in PATHS[:2]:
            assert app_client.get(path).status_code == 200, (name, path)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM audit_event")).scalar() == before
    with Session(engine) as s:
        actions = [(e.actor, e.action) for e in s.exec(select(AuditEventRow)).all()]
    assert ("reviewer", "access_denied") in actions
    assert not any(a == "training_data_exported" for _, a in actions)  # the denied export


def test_agreement_rates_match_the_verdicts(
    app_client: TestClient, engine: Engine, users: dict[str, int]
) -> None:
    populate(engine)
    made = give_verdicts(engine, users["reviewer"])
    want = expected(engine, made)
    login(app_client, "compliance")
    r = app_client.get("/api/v1/feedback")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["verdicts"] == len(made["verdicts"])
    assert data["agreed"] == sum(1 for _, a, _ in made["verdicts"] if a)
    assert data["corrected_turns"] == 4  # the bot-turn correction counts as a correction
    assert table(data["by_script"]) == want["script"]
    assert table(data["by_rule"]) == want["rule"]
    assert table(data["by_step"]) == want["step"]
    assert table(data["by_intent"]) == want["intent"]
    for key in ("by_script", "by_step", "by_rule", "by_intent"):
        rates = [row["rate"] for row in data[key]]
        assert rates == sorted(rates), key  # worst first
    weeks = data["by_week"]
    assert sum(w["total"] for w in weeks) == len(made["verdicts"])
    assert all(dt.date.fromisoformat(w["week"]).weekday() == 0 for w in weeks)  # Mondays
    assert [w["week"] for w in weeks] == sorted(w["week"] for w in weeks)
    # The latest verdict on each item counts: the superseded agreement does not.
    assert data["verdicts"] + 1 < len(list(_all_verdicts(engine)))
    # A longer window takes in the old verdict.
    assert app_client.get("/api/v1/feedback?days=365").json()["verdicts"] == data["verdicts"] + 1
    # The page shows the tables (worst first) and well-formed charts.
    page = app_client.get("/feedback")
    assert page.status_code == 200
    worst_rule = data["by_rule"][0]["key"]
    body = page.text.split('id="by-rule"')[1]
    assert (
        body.index(worst_rule) < body.index(data["by_rule"][-1]["key"]) or len(data["by_rule"]) == 1
    )
    charts = [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", page.text, flags=re.S)]
    assert len(charts) == 2


def _all_verdicts(engine: Engine) -> list[VerdictRow]:
    with Session(engine) as s:
        return list(s.exec(select(VerdictRow)).all())


def test_training_export_is_masked_jsonl_and_audited(
    app_client: TestClient, engine: Engine, users: dict[str, int]
) -> None:
    populate(engine)
    made = give_verdicts(engine, users["reviewer"])
    login(app_client, "supervisor")
    r = app_client.get("/feedback/training.jsonl")
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    lines = r.text.splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 3  # the two callee corrections of item 1, the intent fix of item 2
    assert all(set(row) == {"topic", "text", "intent"} for row in rows)
    assert all(Intent(row["intent"]) for row in rows)
    assert CARD not in r.text and PHONE not in r.text
    assert rows[0]["text"] == "不是我，卡号************0002" and rows[0]["intent"] == "deny"
    assert rows[1]["text"].startswith("打139****5678")
    with Session(engine) as s:
        first_call = made["verdicts"][0][0]
        original = callee_turns(s, first_call)[1]
        assert rows[1]["intent"] == original.intent  # text-only fix keeps the intent
        assert rows[0]["topic"] == callee_turns(s, first_call)[0].topic
        events = s.exec(
            select(AuditEventRow).where(AuditEventRow.action == "training_data_exported")
        ).all()
    assert [(e.actor, e.detail["rows"], e.detail["days"]) for e in events] == [
        ("supervisor", 3, 90)
    ]
    # Compliance may export too; the reviewer may not.
    login(app_client, "compliance")
    assert len(app_client.get("/feedback/training.jsonl").text.splitlines()) == 3


def test_reading_export_is_a_training_corpus_of_corrected_turns(
    app_client: TestClient, engine: Engine, users: dict[str, int]
) -> None:
    populate(engine)
    made = give_verdicts(engine, users["reviewer"])
    login(app_client, "supervisor")
    r = app_client.get("/feedback/reading.jsonl")
    assert r.status_code == 200 and "reading-corrections-" in r.headers["content-disposition"]
    rows = [json.loads(line) for line in r.text.splitlines()]
    parsed = [parse_row(row, "export") for row in rows]  # loads as corpus rows
    assert CARD not in r.text and PHONE not in r.text
    with Session(engine) as s:
        second_call = made["verdicts"][1][0]
        refused = callee_turns(s, second_call)[-1]
        first = callee_turns(s, made["verdicts"][0][0])
    # The reviewer's reading replaces the stored one; uncorrected readings are kept.
    corrected = [p for p in parsed if p.topic == refused.topic and p.labels == {"acts=refuse"}]
    assert corrected
    assert any(p.labels == frozenset(first[1].reading) for p in parsed if first[1].reading)
    assert all(any(label.startswith("acts=") for label in p.labels) for p in parsed)
