"""config.example.toml against the settings object: every setting there, none that does
not exist, each default as the code has it, secrets left out, and the file loadable."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, TypeAdapter
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from bot.cli.app import app
from bot.config_example import render
from bot.settings import REPO_ROOT, Settings, load_settings

EXAMPLE = REPO_ROOT / "config.example.toml"
REGENERATE = "regenerate it: bot config example > config.example.toml"
#: A setting written commented out, with the reason the generator gives.
COMMENTED = re.compile(r"^# (\w+) = .*  # (secret|unset by default|computed by default)")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BOT_") and not name.startswith("BOT_TEST_"):
            monkeypatch.delenv(name)


def model_fields(
    model: type[BaseModel] = Settings, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Every leaf setting of the model, walked independently of the generator."""
    for name, info in model.model_fields.items():
        a = info.annotation
        if isinstance(a, type) and issubclass(a, BaseModel):
            yield from model_fields(a, (*path, name))
        else:
            yield (*path, name), info


def is_secret(info: FieldInfo) -> bool:
    return "SecretStr" in repr(info.annotation)


def flatten(
    table: dict[str, Any], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from flatten(value, (*path, key))
        else:
            yield (*path, key), value


def commented_settings(text: str) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    table: tuple[str, ...] = ()
    for line in text.splitlines():
        if line.startswith("["):
            table = tuple(line.strip("[]").split("."))
        elif m := COMMENTED.match(line):
            found.add((*table, m.group(1)))
    return found


def test_example_is_the_generator_output() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == render(), REGENERATE


def test_every_setting_and_no_other_is_in_the_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    live = dict(flatten(tomllib.loads(text)))
    commented = commented_settings(text)
    assert not set(live) & commented
    fields = dict(model_fields())
    missing = set(fields) - set(live) - commented
    unknown = (set(live) | commented) - set(fields)
    assert not missing, f"settings missing from the example: {sorted(missing)}; {REGENERATE}"
    assert not unknown, f"the example names settings that do not exist: {sorted(unknown)}"


def test_defaults_are_the_codes_and_secrets_are_left_out() -> None:
    live = dict(flatten(tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))))
    for path, info in model_fields():
        name = ".".join(path)
        if is_secret(info):
            assert live.get(path, "") == "", f"{name}: a secret is written in the example"
            continue
        if path not in live:
            continue
        value = TypeAdapter(info.annotation).validate_python(live[path])
        default = info.get_default(call_default_factory=True)
        assert value == default, f"{name}: example {live[path]!r}, code {default!r}"


def test_the_example_loads_as_the_default_settings(tmp_path: Path) -> None:
    loaded = load_settings(EXAMPLE)
    assert loaded.model_dump() == Settings().model_dump()


def test_every_setting_has_a_comment_or_its_table_has_one() -> None:
    """Each setting is explained: by the comment over it (or over the settings right
    above it, which share it), or by the one over its table."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    table_explained = True
    for i, line in enumerate(lines):
        if line.startswith("["):
            table_explained = lines[i - 1].startswith("# environment") and lines[i - 2].startswith(
                "#"
            )
            continue
        key = re.match(r"^(?:# )?(\w+) = ", line)
        if not key:
            continue
        j = i - 1
        while j >= 0 and re.match(r"^(?:# )?\w+ = ", lines[j]):
            j -= 1  # settings that share the comment above them
        explained = lines[j].startswith("#") or table_explained
        assert explained, f"no comment over {key.group(1)}"


def test_an_edited_copy_loads_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a deployment does with the example: copy it, set a few values."""
    config = tmp_path / "config.toml"
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'webhook_url = ""', 'webhook_url = "https://bank.example/hook"'
    )
    config.write_text(text, encoding="utf-8")
    loaded = load_settings(config)
    assert loaded.delivery.webhook_url == "https://bank.example/hook"
    assert loaded.delivery.webhook_secret == SecretStr("")
    monkeypatch.setenv("BOT_DELIVERY__WEBHOOK_URL", "https://other.example/hook")
    assert load_settings(config).delivery.webhook_url == "https://other.example/hook"


def test_bot_config_example_prints_it() -> None:
    result = CliRunner().invoke(app, ["config", "example"])
    assert result.exit_code == 0
    assert result.stdout == EXAMPLE.read_text(encoding="utf-8")
