"""Shared fixtures. Fast tests use the real templates and rule set, and a small
keyword-table analyzer where a test is about dialogue logic rather than NLU."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from bot.core.account import Account
from bot.core.scripts import TemplateLibrary, load_library
from bot.core.vocab import EntityLabel, Intent
from bot.settings import REPO_ROOT
from nlu.reading.schema import Reading, Slot
from nlu.types import Entity, IntentScore, NluContext, NluResult

TEMPLATES = REPO_ROOT / "scripts_templates"
SHARED = Path(os.environ.get("BOT_SHARED_DIR", REPO_ROOT.parent / "shared"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for servers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio, like pipecat and uvicorn."""
    return "asyncio"


@pytest.fixture(scope="session")
def library() -> TemplateLibrary:
    return load_library(TEMPLATES)


@pytest.fixture
def templates_copy(tmp_path: Path) -> Path:
    """A writable copy of the built-in templates, for tests that break them."""
    dst = tmp_path / "templates"
    shutil.copytree(TEMPLATES, dst, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return dst


def make_account(**over: object) -> Account:
    data: dict[str, object] = {
        "account_id": "6225880100000002",
        "name": "李娜",
        "phone": "+8613800000002",
        "card_last4": "0002",
        "scenario": "suspicious_txn",
        "model_score": 0.81,
        "branch": "shenzhen",
        "txn": {"amount": 49800, "date": "2026-11-18", "counterparty": "王强"},
    }
    data.update(over)
    return Account.model_validate(data)


#: Side remarks the test analyzer reads as acts (phrase -> reading value).
STANDARD_ACTS = {
    "你哪位": "acts=ask_who",
    "骗子": "acts=doubt_caller",
    "人工": "acts=want_human",
    "听不清": "acts=hard_of_hearing",
}


class TableAnalyzer:
    """Intent by the first table phrase found in the text, and a reading with the acts of
    every ``acts`` phrase found (test double for the NLU)."""

    def __init__(
        self,
        table: dict[str, Intent],
        default: Intent = Intent.INFORM,
        acts: dict[str, str] | None = None,
    ):
        self.table = table
        self.default = default
        self.acts = STANDARD_ACTS if acts is None else acts
        self.calls: list[tuple[str, str]] = []
        self.entities = {
            "父亲": EntityLabel.RELATIONSHIP,
            "李娜": EntityLabel.PERSON,
            "王强": EntityLabel.PERSON,
        }

    def analyze(self, text: str, context: NluContext) -> NluResult:
        self.calls.append((text, context.topic))
        intent = next((i for k, i in self.table.items() if k in text), self.default)
        entities = tuple(
            Entity(label, word, word, text.index(word), text.index(word) + len(word))
            for word, label in self.entities.items()
            if word in text
        )
        reading = Reading(tuple(Slot(r, 0.9) for k, r in self.acts.items() if k in text))
        return NluResult(text, text, IntentScore(intent, 0.99, "rule"), entities, reading)


STANDARD_TABLE = {
    "留言": Intent.VOICEMAIL,
    "再说一遍": Intent.ASK_REPEAT,
    "开会": Intent.BUSY_CALLBACK,
    "不想说": Intent.REFUSE,
    "我是他老婆": Intent.THIRD_PARTY,
    "打错": Intent.WRONG_NUMBER,
    "不知道": Intent.UNCLEAR,
    "借给": Intent.CUSTODY_LENT,
    "自己保管": Intent.CUSTODY_SELF,
    "是我": Intent.AFFIRM,
    "没有": Intent.DENY,
}


@pytest.fixture
def analyzer() -> TableAnalyzer:
    return TableAnalyzer(dict(STANDARD_TABLE))


# -- databases --------------------------------------------------------------------------
# Every test that takes `engine` runs twice: on SQLite (a fresh file) and on PostgreSQL
# (a fresh schema in the database named by BOT_TEST_PG_URL). In CI (CI=true) a missing
# PostgreSQL fails the run instead of skipping.

PG_URL = os.environ.get("BOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str:
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return ""
    except Exception as exc:  # any driver or network error means "not reachable"
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    problem = _pg_reachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {problem}")
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A migrated, empty database of each kind."""
    import uuid

    import sqlalchemy as sa

    from bot.store.db import make_engine
    from bot.store.migrate import upgrade, upgrade_connection

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bot.db'}"
        upgrade(url)
        eng = make_engine(url)
        yield eng
        eng.dispose()
        return
    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    eng = make_engine(base, connect_args={"options": f"-csearch_path={schema}"})
    with eng.begin() as conn:
        upgrade_connection(conn)
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
