"""Reading-model versions: four-eyes publication, the audit trail, and the published
version being what the bot runs (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.nlu_registry import (
    PUBLISHED,
    RETIRED,
    RegistryError,
    approve,
    pack,
    published,
    published_model_dir,
    reject,
    submit,
    versions,
)
from bot.runtime import build_investigator, reading_model_path
from bot.settings import Settings
from bot.store.models import AuditEventRow, NluModelVersionRow, UserRow
from nlu.reading.model import DEFAULT_MODEL_DIR


@pytest.fixture
def users(engine: Engine) -> None:
    with Session(engine) as s:
        for name, role in [("alice", "admin"), ("bob", "compliance"), ("rita", "reviewer")]:
            s.add(UserRow(username=name, password_hash="x", role=role))
        s.add(UserRow(username="gone", password_hash="x", role="compliance", disabled=True))
        s.commit()


def candidate(tmp_path: Path, version: str) -> Path:
    """A copy of the shipped model under another version."""
    target = tmp_path / version
    shutil.copytree(DEFAULT_MODEL_DIR, target)
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    (target / "config.json").write_text(json.dumps({**config, "version": version}), "utf-8")
    return target


def test_a_model_is_published_only_by_a_second_person(
    engine: Engine, users: None, tmp_path: Path
) -> None:
    row = submit(engine, candidate(tmp_path, "reading-test-1"), "alice")
    assert row.state == "pending" and len(row.digest) == 64
    assert published(engine) is None
    for who, why in [
        ("alice", "second person"),
        ("rita", "may not approve"),
        ("gone", "no active user"),
        ("nobody", "no active user"),
    ]:
        with pytest.raises(RegistryError, match=why):
            approve(engine, "reading-test-1", who)
    done = approve(engine, "reading-test-1", "bob")
    assert done.state == PUBLISHED and done.approved_by == "bob"
    with pytest.raises(RegistryError, match="not pending"):
        approve(engine, "reading-test-1", "bob")
    with pytest.raises(RegistryError, match="already registered"):
        submit(engine, candidate(tmp_path / "again", "reading-test-1"), "alice")
    # A second version retires the first; a rejected one never runs.
    submit(engine, candidate(tmp_path, "reading-test-2"), "bob")
    approve(engine, "reading-test-2", "alice")
    submit(engine, candidate(tmp_path, "reading-test-3"), "alice")
    reject(engine, "reading-test-3", "bob", "worse on the held-out personas")
    states = {r.version: r.state for r in versions(engine)}
    assert states == {
        "reading-test-1": RETIRED,
        "reading-test-2": PUBLISHED,
        "reading-test-3": "rejected",
    }
    with Session(engine) as s:
        actions = [
            (e.actor, e.action, e.object_id)
            for e in s.exec(select(AuditEventRow).order_by(AuditEventRow.id)).all()  # type: ignore[arg-type]
        ]
    assert ("bob", "nlu_model_published", "reading-test-1") in actions
    assert ("bob", "nlu_model_rejected", "reading-test-3") in actions


def test_the_published_version_is_what_the_bot_runs(
    engine: Engine, users: None, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "var", reading_model_source="database", intent_model_enabled=False
    )
    # Nothing published yet: the packaged model runs.
    assert reading_model_path(settings, engine) == settings.reading_model_dir
    submit(engine, candidate(tmp_path, "reading-test-9"), "alice")
    approve(engine, "reading-test-9", "bob")
    path = reading_model_path(settings, engine)
    assert path.parent == tmp_path / "var" / "models" / "reading"
    assert json.loads((path / "config.json").read_text("utf-8"))["version"] == "reading-test-9"
    assert published_model_dir(engine, tmp_path / "var" / "models" / "reading") == path  # reused
    investigator = build_investigator(settings, engine)
    reader = investigator.analyzer.reader  # type: ignore[attr-defined]
    assert reader.version == "reading-test-9"


def test_a_tampered_archive_is_refused(engine: Engine, users: None, tmp_path: Path) -> None:
    submit(engine, candidate(tmp_path, "reading-test-5"), "alice")
    approve(engine, "reading-test-5", "bob")
    with Session(engine) as s:
        row = s.exec(select(NluModelVersionRow)).one()
        row.archive = pack(DEFAULT_MODEL_DIR)  # other bytes than the approved digest
        s.add(row)
        s.commit()
    with pytest.raises(RegistryError, match="does not match its digest"):
        published_model_dir(engine, tmp_path / "models")


def test_a_directory_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", "utf-8")
    with pytest.raises(RegistryError, match=r"missing vocab\.json, weights\.safetensors"):
        pack(tmp_path)
