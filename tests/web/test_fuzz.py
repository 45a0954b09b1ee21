"""Property-based fuzzing of the JSON API with schemathesis, in-process (ASGI), per role.

Every operation of the published OpenAPI document is called with generated input, valid
and invalid: schemathesis's examples, its coverage phase (boundary values such as ids
past 2**31 and 2**63, empty and over-long strings, wrong types, missing fields) and
random fuzzing. Signed in as each role (reviewer, supervisor, compliance, admin) and
signed out, every answer must

* not be a server error (5xx, or an exception escaping the app),
* have a status code the operation documents,
* have a documented content type, and a body matching the documented schema of its
  status (a refusal's :class:`~bot.web.errors.ErrorOut` included).

Every role runs on SQLite; the admin, who reaches the most code, on PostgreSQL too
(its 32-bit ids and its refusal of NUL characters differ from SQLite). The database holds
a campaign with one scored call under review, so that some ids exist. Evaluating a
script version runs its personas through the NLU, seconds a call: here it runs none
(the request is checked and answered all the same; tests/web/test_workspace_flow.py
runs real evaluations).

The run is deterministic (a fixed seed). A failure lists each check that failed with
the request and the answer.
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis import engine as st_engine
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.settings import Settings
from bot.store.models import (
    CallRow,
    DispositionRow,
    ReviewItemRow,
    RiskAssessmentRow,
    TurnRow,
    UserRow,
)
from bot.web.app import create_app
from bot.web.config import WebSettings
from bot.web.deps import CSRF_HEADER, SESSION_COOKIE
from bot.web.security import open_session
from bot.web.workspace import evaluation
from tests.campaign.factories import make_campaign
from tests.web.conftest import Clock

pytestmark = pytest.mark.slow

ANONYMOUS = "anonymous"
PASSES = [
    *(("sqlite", role) for role in ("reviewer", "supervisor", "compliance", "admin", ANONYMOUS)),
    ("postgresql", "admin"),
]
#: What every answer is held to.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def fuzz_config(headers: dict[str, str], examples: int) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": 14,
            "headers": headers,
            "workers": 1,
            # Not a speed check (that is bench/): evaluating a version loads the NLU the
            # first time, which on a loaded 2-core machine took longer than the default 10 s.
            "request-timeout": 300,
            "generation": {"mode": "all", "max-examples": examples},
            "phases": {
                "examples": {"enabled": True},
                # FastAPI answers unknown methods (405); nothing of ours to check there
                "coverage": {"enabled": True, "unexpected-methods": []},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )


def seed_calls(engine: Engine) -> None:
    """One campaign with a scored call queued for review, and its turns."""
    _campaign, accounts = make_campaign(engine, "fuzz", n=1)
    with Session(engine) as s:
        call = CallRow(
            account_pk=accounts[0], started_at=dt.datetime(2026, 11, 30, 2, tzinfo=dt.UTC),
            duration_s=42.0, outcome="completed", risk_score=0.8, risk_band="high",
            disposition="manual_investigation", needs_review=True,
            script_id="suspicious_txn_full", script_version=0,
        )  # fmt: skip
        s.add(call)
        s.flush()
        assert call.id is not None
        turn = {"call_id": call.id, "node_id": "open", "topic": "greeting"}
        s.add(TurnRow(**turn, idx=0, role="bot", text="您好", event="prompt"))
        s.add(TurnRow(**turn, idx=1, role="callee", text="借给朋友了", event="answer"))
        risk = RiskAssessmentRow(
            call_id=call.id, score=0.8, band="high", prior=0.5, prior_contribution=0.1,
            logit=1.4, ruleset_version="v1",
        )  # fmt: skip
        disposition = DispositionRow(
            call_id=call.id, account_pk=accounts[0], disposition="manual_investigation",
            situation="lent", source="bot", needs_review=True,
        )  # fmt: skip
        s.add_all([risk, disposition])
        s.add(ReviewItemRow(call_id=call.id, reason="suspicious"))
        s.commit()


def session_headers(engine: Engine, app: Any, username: str, now: dt.datetime) -> dict[str, str]:
    """A signed-in session's cookie and CSRF token, as request headers."""
    with Session(engine) as s:
        user = s.exec(select(UserRow).where(UserRow.username == username)).one()
        opened = open_session(s, user, now, app.state.web)
        s.commit()
    return {"Cookie": f"{SESSION_COOKIE}={opened.token}", CSRF_HEADER: opened.csrf_token}


@dataclass
class Report:
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)

    def text(self) -> str:
        return f"{len(self.failures)} failure(s):\n" + "\n\n".join(self.failures[:40])


def fuzz(schema: Any) -> Report:
    """Run every phase over every operation; the statuses seen and each failure."""
    report = Report()
    seen: set[tuple[str, str, str]] = set()
    for event in st_engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    report.statuses[interaction.response.status_code] += 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    key = (recorder.label, check.name, failure.title)
                    if key in seen:
                        continue
                    seen.add(key)
                    report.failures.append(
                        f"{recorder.label}: {check.name}: {failure.title}\n"
                        f"{failure.message[:400]}\n{_exchange(recorder, case_id)}"
                    )
        elif isinstance(event, events.NonFatalError):
            key = (event.label, "raised", repr(event.value))
            if key not in seen:
                seen.add(key)
                report.failures.append(f"{event.label}: the app raised {event.value!r}"[:600])
        elif isinstance(event, events.FatalError):
            report.failures.append(f"the run stopped: {event.exception!r}"[:600])
    return report


def _exchange(recorder: Any, case_id: str) -> str:
    interaction = recorder.interactions.get(case_id)
    if interaction is None:
        return ""
    request, response = interaction.request, interaction.response
    body = (request.body or b"")[:200]
    answer = response.content[:300] if response is not None else b"(none)"
    return f"request: {request.method} {request.uri} {body!r}\nanswer: {answer!r}"


def _no_personas(settings: Any, label: str, library: Any, ruleset: Any, *rest: Any) -> Any:
    return evaluation.Side(label, {"personas": 0}, [])


@pytest.mark.parametrize(("engine", "role"), PASSES, indirect=["engine"])
def test_the_api_answers_any_input_as_documented(
    engine: Engine,
    users: dict[str, int],
    clock: Clock,
    role: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_calls(engine)
    monkeypatch.setattr(evaluation, "_run", _no_personas)
    app = create_app(
        Settings(web=WebSettings(lockout_after=3, lockout_minutes=10)), engine, clock=clock
    )
    signed_in = role != ANONYMOUS
    headers = session_headers(engine, app, role, clock()) if signed_in else {}
    config = fuzz_config(headers, examples=4 if signed_in else 2)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, config=config)
    if signed_in:  # signing out would end the session the rest of the run uses
        schema = schema.exclude(method="DELETE", path="/api/v1/session")

    report = fuzz(schema)

    assert not report.failures, report.text()
    assert sum(report.statuses.values()) > 300, report.statuses  # it really ran
    answered = {status // 100 for status in report.statuses}
    if signed_in:
        assert 2 in answered, report.statuses  # the session works: some requests succeed
    else:
        assert answered == {4}, report.statuses  # nothing is served without a session
