"""`bot eval` through the command line: the report contract, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.app import app
from bot.settings import get_settings
from tests.conftest import SHARED

runner = CliRunner()
CONTRACT_PERSONA_KEYS = {
    "id",
    "outcome",
    "risk_band",
    "risk_score",
    "disposition",
    "needs_review",
    "entities",
    "expected",
    "pass",
}


@pytest.fixture
def rules_only(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BOT_INTENT_MODEL_ENABLED", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_report_follows_the_contract_and_one_bad_persona_is_skipped(
    tmp_path: Path, rules_only: None
) -> None:
    personas = tmp_path / "p"
    shutil.copytree(SHARED / "personas", personas, ignore=shutil.ignore_patterns("audio", "*.md"))
    (personas / "zz_broken.yaml").write_text(
        "id: zz\nexpected: {outcome: done}\n", encoding="utf-8"
    )
    report = tmp_path / "r.json"
    result = runner.invoke(
        app, ["eval", str(personas), "--mode", "text", "--report", str(report), "-q"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    summary = data["summary"]
    assert summary["n"] == 10 and {
        "outcome_accuracy",
        "risk_band_accuracy",
        "entity_recall",
    } <= set(summary)
    assert any("zz_broken.yaml" in e for e in summary["errors"])
    for entry in data["personas"]:
        assert set(entry) >= CONTRACT_PERSONA_KEYS
        assert isinstance(entry["entities"], dict)
    p03 = next(e for e in data["personas"] if e["id"] == "p03_wrong_person")
    assert p03["outcome"] == "wrong_person" and p03["expected"]["outcome"] == "wrong_person"


def test_only_and_expected_select_personas_and_a_bad_choice_is_refused(
    tmp_path: Path, rules_only: None
) -> None:
    report = tmp_path / "r.json"
    base = ["eval", str(SHARED / "personas"), "--mode", "text", "--report", str(report), "-q"]
    result = runner.invoke(app, [*base, "--only", "p0[12]_*", "--only", "p08_*"])
    assert result.exit_code == 0, result.output
    ids = [e["id"] for e in json.loads(report.read_text(encoding="utf-8"))["personas"]]
    assert ids == ["p01_salary_owner", "p02_lent_to_friend", "p08_sold_card"]
    result = runner.invoke(app, [*base, "--expected", "wrong_person"])
    ids = [e["id"] for e in json.loads(report.read_text(encoding="utf-8"))["personas"]]
    assert ids == ["p03_wrong_person"]
    result = runner.invoke(app, [*base, "--expected", "stranger"])
    assert result.exit_code != 0 and "stranger is no outcome" in result.output
    result = runner.invoke(app, [*base, "--only", "p0[12]_*", "--expected", "wrong_person"])
    assert result.exit_code != 0 and "no persona" in result.output


def test_audio_mode_without_recordings_is_refused_with_a_reason(tmp_path: Path) -> None:
    personas = tmp_path / "p"
    shutil.copytree(SHARED / "personas", personas, ignore=shutil.ignore_patterns("audio", "*.md"))
    result = runner.invoke(
        app, ["eval", str(personas), "--mode", "audio", "--report", str(tmp_path / "r.json")]
    )
    assert result.exit_code != 0 and "no audio directory" in result.output


@pytest.mark.slow
def test_audio_mode_report_follows_the_contract(tmp_path: Path) -> None:
    """Two personas as real loopback calls: the report has the audio fields of the
    contract (CER, turn latency p50/p95) and the usual persona entries."""
    get_settings.cache_clear()
    personas = tmp_path / "p"
    personas.mkdir()
    for name in ("p02_lent_to_friend", "p09_voicemail"):
        shutil.copy(SHARED / "personas" / f"{name}.yaml", personas)
    report = tmp_path / "r.json"
    result = runner.invoke(
        app,
        [
            "eval", str(personas), "--mode", "audio", "--audio-dir", str(SHARED / "personas" / "audio"),
            "--report", str(report), "-q",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    summary = data["summary"]
    assert summary["n"] == 2 and summary["mode"] == "audio"
    assert summary["outcome_accuracy"] == 1.0
    assert 0 <= summary["cer"] < 0.4
    lat = summary["turn_latency_ms"]
    assert lat["n"] >= 3 and 0 < lat["p50"] <= lat["p95"]  # speed: bench/voice_bench.py
    for entry in data["personas"]:
        assert set(entry) >= CONTRACT_PERSONA_KEYS
        assert entry["audio"]["marks"] and entry["audio"]["reference"]


@pytest.mark.slow
def test_public_personas_all_pass_with_the_trained_model(tmp_path: Path) -> None:
    get_settings.cache_clear()
    report = tmp_path / "r.json"
    result = runner.invoke(
        app, ["eval", str(SHARED / "personas"), "--mode", "text", "--report", str(report), "-q"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
    assert summary["passed"] == 10, summary["failed"]
    assert (
        summary["outcome_accuracy"]
        == summary["risk_band_accuracy"]
        == summary["entity_recall"]
        == 1.0
    )
