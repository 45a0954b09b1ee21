"""``bot campaign import`` through the command line, on a fresh SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner, Result

from bot.cli import campaign_cmd
from bot.settings import get_settings
from tests.campaign.importing import good, read_rejects, write_csv, write_jsonl

runner = CliRunner()

#: Registered the way ``bot`` registers it: ``bot campaign import ...``.
root = typer.Typer()
root.add_typer(campaign_cmd.app, name="campaign")


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database that does not exist yet: the command must create and migrate it."""
    url = f"sqlite:///{tmp_path / 'fresh' / 'bot.db'}"
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str | Path) -> Result:
    return runner.invoke(root, ["campaign", "import", *map(str, args)])


def accounts(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM account")).scalar_one())
    finally:
        engine.dispose()


def test_import_loads_and_summarises(db_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [good(i) for i in range(3)] + [good(9, phone="1")])
    result = run(path, "--campaign", "demo")
    assert result.exit_code == 0, result.output
    assert "loaded" in result.output and "rejected rows" in result.output
    assert "line" in result.output and "phone" in result.output
    assert accounts(db_url) == 3
    again = run(path, "--campaign", "demo")
    assert again.exit_code == 0 and accounts(db_url) == 3


def test_every_row_rejected_exits_1(db_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [good(0, phone="12345678901"), good(1, scenario="x")])
    result = run(path, "--campaign", "demo")
    assert result.exit_code == 1
    assert "12345678901" not in result.output  # reasons are masked on screen too
    assert "123****8901" in result.output


def test_empty_file_exits_0(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert run(path, "--campaign", "demo").exit_code == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "No such file"),
        ("a.csv", "account_id,name\n1,x\n", "lacks required column"),
        ("a.xlsx", "x", "--format"),
    ],
)
def test_unreadable_file_exits_2(
    db_url: str, tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = run(path, "--campaign", "demo")
    assert result.exit_code == 2
    assert message in result.output


def test_rejects_and_format_options(db_url: str, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "accounts.txt", [good(0), good(1, model_score="7")])
    out = tmp_path / "rejects.csv"
    result = run(path, "--campaign", "demo", "--format", "jsonl", "--rejects", out)
    assert result.exit_code == 0, result.output
    (row,) = read_rejects(out)
    assert (row["line"], row["model_score"]) == ("2", "7")
    assert row["error"].startswith("model_score: must be between 0 and 1")


def test_unreachable_database_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql+psycopg://nobody:s3cr3tpw@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        result = run(write_csv(tmp_path / "a.csv", [good(0)]), "--campaign", "demo")
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "cannot open the database" in result.output
    assert "s3cr3tpw" not in result.output


def test_encoding_option(db_url: str, tmp_path: Path) -> None:
    """Big5 reads as GB18030 without an error, into the wrong characters: the operator
    names the encoding, and the summary says which one was used."""
    path = write_csv(tmp_path / "a.csv", [good(0, name="陳大文")], encoding="big5")
    detected = run(path, "--campaign", "demo")
    assert detected.exit_code == 0 and "GB18030 (detected)" in detected.output
    given = run(path, "--campaign", "demo", "--encoding", "big5")
    assert given.exit_code == 0, given.output
    assert "BIG5 (given)" in given.output
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT name FROM account")).scalar_one()
    finally:
        engine.dispose()
    assert stored == "陳大文"


def test_unknown_encoding_exits_2(db_url: str, tmp_path: Path) -> None:
    result = run(write_csv(tmp_path / "a.csv", [good(0)]), "-c", "demo", "--encoding", "x-1")
    assert result.exit_code == 2
    assert "unknown encoding 'x-1'" in result.output
