"""The CLI starts without the heavy layers: ``bot --help``, ``bot --version`` and option
errors load neither the database layer, the investigation (pypinyin, the NLU), Whisper
nor torch; each command imports what it needs when it runs (cold start: 1.6 s to import
the CLI before, 0.6 s after, on the 2-core box)."""

from __future__ import annotations

import json
import subprocess
import sys

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
