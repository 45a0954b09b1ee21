"""Published versions in the database become the templates the bot runs
(``templates_source = "database"``), materialised atomically over the packaged files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.core.yamlsource import SourceFileError
from bot.runtime import build_investigator, template_paths
from bot.settings import Settings
from bot.store.db import make_engine
from bot.store.models import AuditEventRow, RulesetVersionRow, ScriptVersionRow
from bot.templates_live import LOADED, LiveInvestigator
from bot.templates_store import (
    RULESET_FILE,
    materialise_published,
    packaged_scripts,
    source_digest,
)
from tests.conftest import make_account

DOC = "dormant_short"
PACKAGED = packaged_scripts(Settings().templates_dir)[DOC]
HELLO = "这里是{{ bank_name }}反诈中心。"


class DatabaseSettings(Settings):
    """Settings of a worker that runs the published set."""

    templates_source: Literal["files", "database"] = "database"


def settings(tmp_path: Path) -> DatabaseSettings:
    return DatabaseSettings(data_dir=tmp_path, intent_model_enabled=False)


def with_greeting(say: str = HELLO) -> str:
    return (
        PACKAGED.replace("start: opening", "start: hello")
        + f'nodes:\n  hello:\n    say: "{say}"\n    next: opening\n'
    )


def add(engine: Engine, source: str, version: int, state: str = "published") -> None:
    with Session(engine) as s:
        s.add(
            ScriptVersionRow(
                script_id=DOC,
                version=version,
                source=source,
                digest=source_digest(source),
                state=state,
            )
        )
        s.commit()


def opening(investigator: object) -> str:
    dm = investigator.dialogue(make_account(scenario="dormant"), DOC)  # type: ignore[attr-defined]
    return str(dm.start().text)


def test_nothing_published_runs_the_packaged_files(engine: Engine, tmp_path: Path) -> None:
    found = materialise_published(settings(tmp_path), engine)
    assert found.root.parent == tmp_path / "templates"
    assert (found.root / "scripts" / f"{DOC}.yaml").read_text(encoding="utf-8") == PACKAGED
    packaged_rules = (Settings().templates_dir / RULESET_FILE).read_bytes()
    assert found.ruleset.read_bytes() == packaged_rules
    assert (found.root / "routing.yaml").is_file() and (found.root / "blocks").is_dir()
    assert not list(found.root.rglob("*.py"))
    again = materialise_published(settings(tmp_path), engine)
    assert again == found  # content-addressed: the same set, the same directory
    assert [p.name for p in (tmp_path / "templates").iterdir()] == [found.root.name]


def test_a_published_greeting_reaches_the_dialogue(engine: Engine, tmp_path: Path) -> None:
    add(engine, with_greeting(), 1, "retired")
    add(engine, with_greeting("您好，{{ bank_name }}提醒您注意账户安全。"), 2)
    add(engine, with_greeting("草稿不会上线。"), 3, "draft")
    add(engine, with_greeting("待审批也不会。"), 4, "pending")
    text = opening(build_investigator(settings(tmp_path), engine))
    assert text.startswith("您好，示例银行提醒您注意账户安全。") and "全程录音" in text
    files = opening(build_investigator(Settings(intent_model_enabled=False)))
    assert "提醒您注意账户安全" not in files  # templates_source = files: the packaged text
    before = materialise_published(settings(tmp_path), engine)
    add(engine, with_greeting(), 5)  # a new publication: a new directory; the old one stays
    with Session(engine) as s:
        old = s.get(ScriptVersionRow, 2)
        assert old is not None
        old.state = "retired"
        s.add(old)
        s.commit()
    after = materialise_published(settings(tmp_path), engine)
    assert after.root != before.root and before.root.is_dir()
    assert opening(build_investigator(settings(tmp_path), engine)).startswith("这里是示例银行")
    assert not [p for p in (tmp_path / "templates").iterdir() if p.name.startswith(".")]


def test_a_published_rule_set_is_the_one_scored_with(engine: Engine, tmp_path: Path) -> None:
    source = (Settings().templates_dir / RULESET_FILE).read_text(encoding="utf-8")
    changed = source.replace('version: "', 'version: "db-', 1)
    with Session(engine) as s:
        s.add(
            RulesetVersionRow(
                version="1", source=changed, digest=source_digest(changed), state="published"
            )
        )
        s.commit()
    investigator = build_investigator(settings(tmp_path), engine)
    assert investigator.scorer.ruleset.version.startswith("db-")
    root, ruleset = template_paths(settings(tmp_path), engine)
    assert ruleset == root / RULESET_FILE


def test_a_broken_published_script_stops_the_worker_at_start(
    engine: Engine, tmp_path: Path
) -> None:
    add(engine, with_greeting("{{ nobody }}"), 1)
    with pytest.raises(SourceFileError, match="nobody"):
        build_investigator(settings(tmp_path), engine)


def test_an_unknown_templates_source_is_refused(tmp_path: Path) -> None:
    class Odd(Settings):
        templates_source: str = "ftp"  # type: ignore[assignment]

    with pytest.raises(ValueError, match="files' or 'database"):
        template_paths(Odd(data_dir=tmp_path))


class Ticks:
    """A clock the test moves (the reload interval without waiting)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def add_block(engine: Engine, source: str, version: int, state: str = "published") -> None:
    with Session(engine) as s:
        s.add(
            ScriptVersionRow(
                script_id=f"blocks/{BLOCK}",
                version=version,
                source=source,
                digest=source_digest(source),
                state=state,
            )
        )
        s.commit()


BLOCK = "identity_check"
OPENING = "您好，我是{{ bank_name }}的智能语音助手，本次通话将全程录音。"
BLOCK_SOURCE = (Settings().templates_dir / "blocks" / f"{BLOCK}.yaml").read_text("utf-8")


def worker_investigator(engine: Engine, tmp_path: Path, ticks: Ticks) -> LiveInvestigator:
    """What the worker's build_investigator makes with templates_source = database, on a
    clock of the test's."""
    from bot.runtime import _Shared

    s = settings(tmp_path)
    return LiveInvestigator(s, engine, _Shared(s, engine).core, clock=ticks)


def test_a_worker_picks_up_a_newly_published_block_for_the_next_call(
    engine: Engine, tmp_path: Path
) -> None:
    assert OPENING in BLOCK_SOURCE
    ticks = Ticks()
    built = build_investigator(settings(tmp_path), engine)
    assert isinstance(built, LiveInvestigator)  # the worker's own kind, interval 10 s
    investigator = worker_investigator(engine, tmp_path, ticks)
    account = make_account(scenario="dormant")
    assert opening(investigator).startswith("您好，我是示例银行")
    in_progress = investigator.dialogue(account, DOC)
    first = investigator.digest

    add_block(engine, BLOCK_SOURCE.replace("我是", "这里是"), 1)  # approved meanwhile
    assert opening(investigator).startswith("您好，我是")  # not checked before the interval
    ticks.now += 10
    assert opening(investigator).startswith("您好，这里是示例银行")  # the next call
    assert investigator.digest != first
    # the call that had begun speaks and is scored with the set it started with
    assert str(in_progress.start().text).startswith("您好，我是")
    assert investigator.library.blocks[BLOCK].text.count("这里是") == 1
    with Session(engine) as s:
        loaded = [
            r.detail
            for r in s.exec(select(AuditEventRow).where(AuditEventRow.action == LOADED)).all()
        ]
    assert [d["digest"] for d in loaded][-2:] == [first, investigator.digest]
    assert loaded[-1]["replaces"] == first

    # a published set that fails the checks leaves the running one in place
    broken = BLOCK_SOURCE.replace(OPENING, "{{ nobody }}")
    with Session(engine) as s:
        row = s.exec(select(ScriptVersionRow)).one()
        row.state = "retired"
        s.add(row)
        s.commit()
    add_block(engine, broken, 2)
    ticks.now += 10
    running = investigator.digest
    assert opening(investigator).startswith("您好，这里是")
    assert investigator.digest == running


def test_a_worker_rides_out_a_database_it_cannot_reach(engine: Engine, tmp_path: Path) -> None:
    ticks = Ticks()
    investigator = worker_investigator(engine, tmp_path, ticks)
    running = investigator.digest
    investigator._engine = make_engine("sqlite:///" + str(tmp_path / "nowhere" / "x.db"))
    ticks.now += 10
    assert opening(investigator).startswith("您好，我是示例银行")  # the set it has
    assert investigator.digest == running


def test_reloading_is_off_with_an_interval_of_zero(engine: Engine, tmp_path: Path) -> None:
    class AtStart(DatabaseSettings):
        templates_reload_s: float = 0

    built = build_investigator(AtStart(data_dir=tmp_path, intent_model_enabled=False), engine)
    assert not isinstance(built, LiveInvestigator)
