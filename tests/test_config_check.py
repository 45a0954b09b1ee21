"""The configuration check: each problem found on settings built with it, a clean demo
configuration without any, and the commands that refuse to start on a problem."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from bot.cli.app import app
from bot.config_check import (
    EVERYTHING,
    WEB,
    Finding,
    Needs,
    check,
    for_demo,
    for_worker,
    load_and_check,
    problems,
)
from bot.delivery.config import DeliverySettings
from bot.settings import Settings, get_settings
from bot.store.pii_crypto import PiiSettings
from bot.telephony.config import TelephonySettings, TwilioSettings
from bot.voice.tts.config import TtsSettings

runner = CliRunner()
GOOD_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes
BAD_KEY = "bm90LWEta2V5"  # base64 of 9 bytes


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No BOT_* variable of the machine running the tests leaks into the settings."""
    for name in list(os.environ):
        if name.startswith("BOT_") and not name.startswith("BOT_TEST_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def fake_whisper(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(b"\0")
    return folder


def make_settings(tmp_path: Path, **over: object) -> Settings:
    """Settings that pass every check (a fake Whisper model, a TTS interpreter that
    exists, file delivery under a temporary data dir), with ``over`` on top."""
    base: dict[str, object] = {
        "data_dir": tmp_path / "var",
        "whisper_model_dir": fake_whisper(tmp_path / "whisper"),
        "tts": TtsSettings(tts_python=Path(sys.executable)),
        "delivery": DeliverySettings(delivery_mode="file"),
    }
    return Settings(**{**base, **over})  # type: ignore[arg-type]


def settings_named(found: list[Finding]) -> set[str]:
    return {f.setting for f in found}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_settings_that_pass_every_check(tmp_path: Path) -> None:
    assert check(make_settings(tmp_path)) == []


def test_webhook_mode_without_a_url_or_secret(tmp_path: Path) -> None:
    s = make_settings(tmp_path, delivery=DeliverySettings(delivery_mode="webhook"))
    found = check(s)
    assert settings_named(problems(found)) == {
        "BOT_DELIVERY__WEBHOOK_URL",
        "BOT_DELIVERY__WEBHOOK_SECRET",
    }
    assert all("BOT_DELIVERY__DELIVERY_MODE=file" in f.fix for f in found)
    # a text-mode worker that does not deliver does not need it
    assert check(s, for_worker("simulated", deliver=False)) == []


def test_plain_http_webhook_is_a_warning_and_loopback_is_fine(tmp_path: Path) -> None:
    def webhook(url: str) -> Settings:
        d = DeliverySettings(webhook_url=url, webhook_secret=SecretStr("k"))
        return make_settings(tmp_path, delivery=d)

    found = check(webhook("http://bank.example/hook"))
    assert [(f.setting, f.severity) for f in found] == [("BOT_DELIVERY__WEBHOOK_URL", "warning")]
    assert check(webhook("http://127.0.0.1:9000/hook")) == []
    assert settings_named(problems(check(webhook("bank.example/hook")))) == {
        "BOT_DELIVERY__WEBHOOK_URL"
    }


def test_missing_whisper_model(tmp_path: Path) -> None:
    s = make_settings(tmp_path, whisper_model_dir=None)
    (found,) = check(s)
    assert found.setting == "BOT_WHISPER_MODEL_DIR" and found.severity == "problem"
    assert str(tmp_path / "var" / "models" / "whisper-base") in found.message
    assert "bot models install" in found.fix
    assert check(s, WEB) == []  # the dashboard needs no Whisper


def test_unreachable_database_is_a_problem_but_the_worker_waits(tmp_path: Path) -> None:
    s = make_settings(
        tmp_path, database_url=f"postgresql+psycopg://u:hunter22@127.0.0.1:{closed_port()}/x"
    )
    (found,) = check(s, WEB)
    assert found.setting == "BOT_DATABASE_URL" and found.severity == "problem"
    assert "hunter22" not in found.line()  # the password is never shown
    (waiting,) = check(s, for_worker("simulated"))
    assert waiting.severity == "warning" and "waits" in waiting.fix


def test_reachable_postgresql(tmp_path: Path, pg_url: str) -> None:
    assert check(make_settings(tmp_path, database_url=pg_url), WEB) == []


def test_not_a_database_url(tmp_path: Path) -> None:
    (found,) = check(make_settings(tmp_path, database_url="not a url"), WEB)
    assert found.setting == "BOT_DATABASE_URL"


def test_sqlite_folder_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    found = check(make_settings(tmp_path, data_dir=blocker / "var"), WEB)
    assert settings_named(found) == {"BOT_DATA_DIR"}
    assert "is a file, not a folder" in found[0].message


def test_gateway_without_credentials(tmp_path: Path) -> None:
    twilio = TelephonySettings(provider="twilio")
    found = check(make_settings(tmp_path, telephony=twilio))
    assert settings_named(problems(found)) == {
        f"BOT_TELEPHONY__TWILIO__{k}"
        for k in ("ACCOUNT_SID", "AUTH_TOKEN", "FROM_NUMBER", "PUBLIC_BASE_URL", "STREAM_URL")
    }
    assert check(make_settings(tmp_path, telephony=twilio), WEB) == []
    complete = TwilioSettings(
        account_sid="AC1",
        auth_token=SecretStr("t"),
        from_number="+15005550006",
        public_base_url="https://bot.example",
        stream_url="wss://bot.example/media",
    )
    s = make_settings(tmp_path, telephony=TelephonySettings(provider="twilio", twilio=complete))
    assert check(s) == []
    # the worker checks the gateway it dials through, not the provider setting
    assert check(make_settings(tmp_path), for_worker("twilio")) != []
    assert check(make_settings(tmp_path, telephony=twilio), for_worker("loopback")) == []


def test_malformed_pii_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # settings refuse such a key when they are built ...
    monkeypatch.setenv("BOT_PII__KEY", BAD_KEY)
    settings, found = load_and_check(EVERYTHING)
    assert settings is None
    assert settings_named(found) == {"BOT_PII__KEY"}
    assert BAD_KEY not in found[0].line() and "32 bytes" in found[0].message
    monkeypatch.delenv("BOT_PII__KEY")
    # ... and the check finds one in settings made without validation
    pii = PiiSettings.model_construct(key=SecretStr(GOOD_KEY), old_keys=[SecretStr("%%")])
    unchecked = make_settings(tmp_path).model_copy(update={"pii": pii})
    assert settings_named(check(unchecked)) == {"BOT_PII__OLD_KEYS"}
    assert check(make_settings(tmp_path, pii=PiiSettings(key=SecretStr(GOOD_KEY)))) == []
    retired_only = PiiSettings(old_keys=[SecretStr(GOOD_KEY)])
    (warning,) = check(make_settings(tmp_path, pii=retired_only))
    assert warning.setting == "BOT_PII__KEY" and warning.severity == "warning"


def test_values_the_settings_refuse_name_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_WEB__PORT", "0")
    _, found = load_and_check(WEB)
    assert settings_named(found) == {"BOT_WEB__PORT"}


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_CONFIG_FILE", str(tmp_path / "nope.toml"))
    _, found = load_and_check(WEB)
    assert settings_named(found) == {"BOT_CONFIG_FILE"}


def test_tts_voice_missing(tmp_path: Path) -> None:
    no_python = TtsSettings(tts_python=tmp_path / "no-venv" / "bin" / "python")
    (found,) = check(make_settings(tmp_path, tts=no_python))
    assert found.setting == "BOT_TTS__TTS_PYTHON" and "setup_tts.sh" in found.fix
    assert check(make_settings(tmp_path, tts=no_python), for_demo("simulated")) == []
    for spec in ("no_such_package_xyz.voices:make", "json"):
        (bad,) = check(make_settings(tmp_path, tts=TtsSettings(service=spec)))
        assert bad.setting == "BOT_TTS__SERVICE"
    assert check(make_settings(tmp_path, tts=TtsSettings(service="json:loads"))) == []


def test_default_demo_configuration_has_no_problems(tmp_path: Path) -> None:
    """The demo on the embedded defaults, in a fresh data dir: text mode needs nothing
    more; on the loopback line only Whisper (which ``bot models install`` provides)."""
    s = Settings(data_dir=tmp_path / "var")
    assert check(s, for_demo("simulated")) == []
    voice = Settings(data_dir=tmp_path / "var", tts=TtsSettings(tts_python=Path(sys.executable)))
    assert settings_named(check(voice, for_demo("loopback"))) == {"BOT_WHISPER_MODEL_DIR"}


# -- through the command line ------------------------------------------------------------


def test_cli_prints_problems_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "var"))
    result = runner.invoke(app, ["config", "check", "--for", "web"])
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output

    result = runner.invoke(app, ["config", "check", "--for", "worker"])
    assert result.exit_code == 1 and "problem" in result.output and "WEBHOO" in result.output

    result = runner.invoke(app, ["config", "check", "--for", "worker", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["warnings"] == []
    assert {p["setting"] for p in data["problems"]} == {
        "BOT_DELIVERY__WEBHOOK_URL",
        "BOT_DELIVERY__WEBHOOK_SECRET",
    }
    assert all(p["fix"] for p in data["problems"])


def test_cli_warnings_alone_exit_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOT_WEB__SECURE_COOKIES", "false")
    monkeypatch.setenv("BOT_WEB__HOST", "0.0.0.0")
    result = runner.invoke(app, ["config", "check", "--for", "web", "--json"])
    assert result.exit_code == 0, result.output
    assert [w["setting"] for w in json.loads(result.stdout)["warnings"]] == [
        "BOT_WEB__SECURE_COOKIES"
    ]


def test_cli_refuses_an_unknown_target() -> None:
    assert runner.invoke(app, ["config", "check", "--for", "nothing"]).exit_code == 2


def test_needs_of_the_commands() -> None:
    assert for_worker("simulated").voice is False and for_worker("loopback").voice is True
    assert for_demo("loopback").delivery is False
    assert Needs().gateway is None and WEB.voice is False


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that gets as far as building the investigator (the models) fails the
    test: the check must stop it before."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("models loaded before the configuration was checked")

    monkeypatch.setattr("bot.runtime.build_investigator", refuse)
    monkeypatch.setattr("bot.store.migrate.upgrade", refuse)


def one_line_errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_worker_stops_on_a_problem_before_loading_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_models: None
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "var"))
    result = runner.invoke(app, ["worker", "--until-idle"])
    assert result.exit_code == 1, result.output
    errors = one_line_errors(result.output)
    assert len(errors) == 2 and "BOT_DELIVERY__WEBHOOK_URL" in errors[0]
    assert "configuration check failed" in result.output


def test_web_stops_on_an_unreachable_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_models: None
) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", f"postgresql+psycopg://u@127.0.0.1:{closed_port()}/x")
    result = runner.invoke(app, ["web"])
    assert result.exit_code == 1, result.output
    (error,) = one_line_errors(result.output)
    assert error.startswith("error: BOT_DATABASE_URL: cannot reach")


def test_demo_stops_without_a_whisper_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_models: None
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOT_TTS__TTS_PYTHON", sys.executable)
    result = runner.invoke(app, ["demo", "--personas", str(tmp_path)])
    assert result.exit_code == 1, result.output
    (error,) = one_line_errors(result.output)
    assert "BOT_WHISPER_MODEL_DIR" in error and "bot models install" in error


def test_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bot {version('callbot-investigator')}"
