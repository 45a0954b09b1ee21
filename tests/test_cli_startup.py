"""The CLI starts without the heavy layers: ``bot --help``, ``bot --version`` and option
errors load neither the database layer, the investigation (pypinyin, the NLU), Whisper
nor torch; each command imports what it needs when it runs (cold start: 1.6 s to import
the CLI before, 0.6 s after, on the 2-core box)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

HEAVY = ("sqlalchemy", "sqlmodel", "pypinyin", "torch", "faster_whisper", "transformers",
         "spacy", "bot.core.investigation", "bot.store.models", "pipecat")  # fmt: skip


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_layer() -> None:
    loaded = loaded_after("import bot.cli.app")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY}


def test_help_and_version_load_no_heavy_layer() -> None:
    for args in (["--version"], ["--help"], ["worker", "--help"], ["campaign", "--help"]):
        code = (
            "import sys\nfrom bot.cli.app import app\n"
            f"sys.argv = ['bot', *{args!r}]\n"
            "try:\n    app()\nexcept SystemExit:\n    pass"
        )
        loaded = loaded_after(code)
        heavy = {m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY}
        assert not heavy, (args, sorted(heavy)[:5])


def test_a_bad_gateway_is_refused_before_any_model_loads() -> None:
    code = (
        "import sys\nfrom bot.cli.app import app\n"
        "sys.argv = ['bot', 'worker', '--gateway', 'foo']\n"
        "try:\n    app()\nexcept SystemExit as e:\n    print('exit', e.code)"
    )
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    lines = run.stdout.splitlines()
    assert "exit 2" in lines, run.stdout + run.stderr
    assert "foo" in run.stdout + run.stderr
    loaded = set(json.loads(lines[-1]))
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "faster_whisper", "spacy")}
    assert "bot.core.investigation" not in loaded


def test_every_help_text_renders_without_leaked_markup() -> None:
    """``--help`` of every command and group exits 0 and shows no reStructuredText or Rich
    markup from docstrings (``code``, :class:, [bold]...)."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from bot.cli.app import app

    runner, seen = CliRunner(), []

    def walk(command: Any, path: list[str]) -> None:
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        for token in ("``", ":class:", ":func:", "[/", "[bold", "[red", "[yellow"):
            assert token not in result.output, (path, token)
        seen.append(" ".join(path))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    assert {"worker", "web", "campaign import", "users token create"} <= set(seen)
