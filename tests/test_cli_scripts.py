"""`bot scripts` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bot.cli.app import app

runner = CliRunner()

ACCOUNT = {
    "account_id": "6222000000000001",
    "name": "王芳",
    "phone": "+8613800000000",
    "card_last4": "1234",
    "scenario": "suspicious_txn",
    "model_score": 0.82,
    "txn": {"amount": 49800, "date": "2026-11-18", "counterparty": "李四"},
}


def test_lint_builtin_ok() -> None:
    result = runner.invoke(app, ["scripts", "lint"])
    assert result.exit_code == 0, result.output
    assert "6 scripts" in result.output


def test_lint_reports_file_line_reason_and_fails(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "q_occupation.yaml"
    f.write_text(
        f.read_text(encoding="utf-8").replace("在哪里上班？", "在哪里上班？{{ employer }}"),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["scripts", "lint", "--templates", str(templates_copy)])
    assert result.exit_code == 1
    line = next(
        i
        for i, t in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if "{{ employer }}" in t
    )
    assert (
        f"q_occupation.yaml:{line}: nodes.occupation.say: unknown variable 'employer'"
        in result.output.replace("\n", "")
    )


def test_lint_reports_incomplete_routing(templates_copy: Path) -> None:
    r = templates_copy / "routing.yaml"
    r.write_text(
        r.read_text(encoding="utf-8").replace("high: dormant_full}", "high: dormant_fulll}"),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["scripts", "lint", "--templates", str(templates_copy)])
    assert result.exit_code == 1 and "unknown script 'dormant_fulll'" in result.output


def test_render_prints_every_prompt_for_the_account() -> None:
    result = runner.invoke(
        app,
        [
            "scripts",
            "render",
            "suspicious_txn_full",
            "--account",
            json.dumps(ACCOUNT, ensure_ascii=False),
        ],
        terminal_width=300,
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "王芳" in out and "4.98万元" in out and "11月18日" in out and "李四" in out
    assert "credentials_check" in out


def test_render_unknown_script_and_bad_account() -> None:
    assert runner.invoke(app, ["scripts", "render", "nope", "--account", "{}"]).exit_code == 2
    bad = runner.invoke(app, ["scripts", "render", "dormant_full", "--account", '{"name": "x"}'])
    assert bad.exit_code == 2 and "account_id" in bad.output
