from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings, load_settings


def test_defaults_point_at_packaged_templates_and_model() -> None:
    s = Settings()
    assert (s.templates_dir / "routing.yaml").is_file()
    assert s.intent_model_dir.name == "model"
    assert s.review_sample_rate == 0.05


def test_env_vars_with_nested_delimiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TIERS__HIGH", "0.9")
    monkeypatch.setenv("BOT_REVIEW_SAMPLE_RATE", "0.2")
    s = Settings()
    assert s.tiers.high == 0.9 and s.review_sample_rate == 0.2


@pytest.mark.parametrize(
    "suffix, body",
    [
        (".toml", 'bank_name = "测试银行"\n[tiers]\nmedium = 0.3\n'),
        (".yaml", "bank_name: 测试银行\ntiers: {medium: 0.3}\n"),
    ],
)
def test_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, body: str
) -> None:
    f = tmp_path / f"bot{suffix}"
    f.write_text(body, encoding="utf-8")
    monkeypatch.delenv("BOT_CONFIG_FILE", raising=False)
    s = load_settings(f)
    assert s.bank_name == "测试银行" and s.tiers.medium == 0.3 and s.tiers.high == 0.8


def test_env_beats_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "bot.yaml"
    f.write_text("bank_name: 文件银行\n", encoding="utf-8")
    monkeypatch.setenv("BOT_CONFIG_FILE", str(f))
    monkeypatch.setenv("BOT_BANK_NAME", "环境银行")
    assert Settings().bank_name == "环境银行"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TIERS__MEDIUM", "0.9")
    monkeypatch.setenv("BOT_TIERS__HIGH", "0.5")
    with pytest.raises(ValidationError, match="medium threshold"):
        Settings()


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_CONFIG_FILE", "/nonexistent/bot.toml")
    with pytest.raises(FileNotFoundError, match="BOT_CONFIG_FILE"):
        Settings()
