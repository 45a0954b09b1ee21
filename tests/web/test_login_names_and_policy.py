"""User names are normalised (no shadow accounts), and passwords pass a policy beyond
their length."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine, select
from typer.testing import CliRunner

from bot.cli.app import app
from bot.settings import get_settings
from bot.store.models import UserRow
from bot.web.password_policy import PasswordRejected, check_password, common_passwords
from bot.web.security import create_user
from bot.web.usernames import find_user, normalise_username
from tests.web.conftest import PASSWORD, login

# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["adm1", "ADM1", "adm1 ", " Adm1\t", "ａｄｍ１", "ADM１", "adm1\u00a0"],
)
def test_spellings_of_one_name_normalise_alike(typed: str) -> None:
    assert normalise_username(typed) == "adm1"


def test_inner_spaces_collapse_and_case_folds_beyond_ascii() -> None:
    assert normalise_username("  Lin \u3000  Wei ") == "lin wei"
    assert normalise_username("STRASSE") == normalise_username("straße") == "strasse"


@pytest.mark.parametrize("shadow", ["ADM1", "adm1 ", "ａｄｍ１", " Adm1"])
def test_a_shadow_of_an_existing_name_is_refused(engine: Engine, shadow: str) -> None:
    with Session(engine) as s:
        create_user(s, "adm1", PASSWORD, "admin")
        s.commit()
        with pytest.raises(ValueError, match=r"already exists .*ignore case"):
            create_user(s, shadow, PASSWORD, "reviewer")
        s.rollback()
        assert [u.username for u in s.exec(select(UserRow))] == ["adm1"]


def test_names_are_stored_normalised(engine: Engine) -> None:
    with Session(engine) as s:
        assert create_user(s, "  Lin  Wei ", PASSWORD, "reviewer").username == "lin wei"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 61, "lin\u200bwei", "lin\x07"])
def test_invalid_names_are_refused(engine: Engine, bad: str) -> None:
    with Session(engine) as s, pytest.raises(ValueError, match="user name"):
        create_user(s, bad, PASSWORD, "reviewer")


def test_a_name_stored_before_normalisation_is_still_found_and_guarded(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(UserRow(username="Lin", password_hash="x", role="reviewer"))
        s.commit()
        found = find_user(s, "LIN ")
        assert found is not None and found.username == "Lin"
        with pytest.raises(ValueError, match="already exists"):
            create_user(s, "lin", PASSWORD, "reviewer")


def test_two_old_names_that_normalise_alike_are_not_guessed_between(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(UserRow(username="Lin", password_hash="x", role="reviewer"))
        s.add(UserRow(username="LIN", password_hash="x", role="admin"))
        s.commit()
        assert find_user(s, "lin") is None
        found = find_user(s, "LIN")
        assert found is not None and found.role == "admin"  # only the exact old spelling
        with pytest.raises(ValueError, match="already exists"):
            create_user(s, "lIn", PASSWORD, "reviewer")


def test_login_accepts_any_spelling_of_the_name(
    app_client: TestClient, users: dict[str, int]
) -> None:
    r = app_client.post("/api/v1/session", json={"username": " REVIEWER ", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["username"] == "reviewer"
    assert login(app_client, "ｒｅｖｉｅｗｅｒ")


# -- passwords --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 12"),
        ("x" * 257, "at most 256"),
        ("woaini1314520", "most common"),
        ("iloveyou1314", "most common"),
        ("password1234", "most common"),
        ("1qaz2wsx3edc", "most common"),
        ("QWERTYUIOP12", "common passwords, keyboard or number"),
        ("woaini5201314", "common passwords, keyboard or number"),
        ("p@ssw0rd1314", "common passwords, keyboard or number"),
        ("Summer2024!!", "common passwords, keyboard or number"),
        ("woaini_1314_520", "most common"),
        ("qwertypassword", "common passwords, keyboard or number"),
        ("!QAZ@WSX#EDC", "common passwords, keyboard or number"),
        ("aaaaaaaaaaaa", "one piece repeated"),
        ("abcabcabcabc", "one piece repeated"),
        ("woaiwoaiwoai", "one piece repeated"),
        ("abcdefghijkl", "sequential or keyboard"),
        ("lkjhgfdsaqwe", "sequential or keyboard"),
        ("zyxwvutsrqpo", "sequential or keyboard"),
        ("123456789012", "digits only"),
        ("5201314 5201314", "digits only"),
        ("13800138000 1", "digits only"),
        ("my name is lin wei", "user name"),
        ("LinWei-forever-2024", "user name"),
        ("l1nwe1 is my name", "user name"),
        ("iew nil backwards", "user name"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, message: str) -> None:
    with pytest.raises(PasswordRejected, match=message):
        check_password(password, "Lin Wei")


@pytest.mark.parametrize(
    "password",
    [
        PASSWORD,
        "a long enough pass",
        "kV9#qp2mZx!w",
        "Tr0ub4dor&3x!",
        "my cat Mimi likes fish",
        "wo de mao jiao xiaohua",
        "Beijing2008!Olympics",
    ],
)
def test_reasonable_passwords_pass(password: str) -> None:
    check_password(password, "lin wei")


def test_the_shipped_list_has_the_usual_suspects() -> None:
    words = common_passwords()
    assert len(words) > 300
    assert {"123456", "5201314", "woaini1314", "qwerty", "password", "1qaz2wsx"} <= words
    assert all(w == w.strip().casefold() for w in words)


def test_user_creation_applies_the_policy(engine: Engine) -> None:
    with Session(engine) as s:
        with pytest.raises(PasswordRejected, match="user name"):
            create_user(s, "zhangwei", "zhangwei is great!", "reviewer")
        assert s.exec(select(UserRow)).first() is None


# -- the CLI ----------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_the_cli_stores_the_normalised_name_and_refuses_its_shadow(data_dir: Path) -> None:
    first = runner.invoke(app, ["users", "add", "ADM1 ", "--role", "admin"], input=PASSWORD + "\n")
    assert first.exit_code == 0, first.output
    assert "stored as 'adm1'" in first.output
    shadow = runner.invoke(
        app, ["users", "add", "ａｄｍ１", "--role", "admin"], input=PASSWORD + "\n"
    )
    assert shadow.exit_code != 0 and "already exists" in shadow.output
    assert runner.invoke(app, ["users", "disable", "Adm1"]).exit_code == 0
    engine = create_engine(f"sqlite:///{data_dir / 'bot.db'}")
    with Session(engine) as s:
        users = s.exec(select(UserRow)).all()
        assert [(u.username, u.disabled) for u in users] == [("adm1", True)]


def test_the_cli_explains_a_refused_password(data_dir: Path) -> None:
    r = runner.invoke(app, ["users", "add", "lin", "--role", "reviewer"], input="woaini1314520\n")
    assert r.exit_code != 0 and "most common" in r.output
