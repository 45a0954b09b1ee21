"""``bot users``: accounts are created with the password from stdin, never argv."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, create_engine, select
from typer.testing import CliRunner

from bot.cli.app import app
from bot.settings import get_settings
from bot.store.models import AuditEventRow, UserRow
from bot.web.security import _verify

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_add_list_disable(data_dir: Path) -> None:
    r = runner.invoke(
        app, ["users", "add", "lin", "--role", "reviewer"], input="a long enough pass\n"
    )
    assert r.exit_code == 0, r.output
    engine = create_engine(f"sqlite:///{data_dir / 'bot.db'}")
    with Session(engine) as s:
        user = s.exec(select(UserRow)).one()
        assert user.role == "reviewer" and _verify(user.password_hash, "a long enough pass")
        assert "a long enough pass" not in user.password_hash
        assert s.exec(select(AuditEventRow)).one().action == "user_created"
    listing = runner.invoke(app, ["users", "list"])
    assert "lin" in listing.output and "active" in listing.output
    assert runner.invoke(app, ["users", "disable", "lin"]).exit_code == 0
    assert "disabled" in runner.invoke(app, ["users", "list"]).output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["users", "add", "x", "--role", "boss"], "a long enough pass\n", "--role must be"),
        (["users", "add", "x", "--role", "admin"], "short\n", "at least 12"),
    ],
)
def test_bad_input_is_refused(data_dir: Path, args: list[str], stdin: str, message: str) -> None:
    r = runner.invoke(app, args, input=stdin)
    assert r.exit_code != 0 and message in r.output


def test_a_duplicate_user_is_refused(data_dir: Path) -> None:
    args = ["users", "add", "lin", "--role", "reviewer"]
    assert runner.invoke(app, args, input="a long enough pass\n").exit_code == 0
    again = runner.invoke(app, args, input="a long enough pass\n")
    assert again.exit_code != 0 and "already exists" in again.output
