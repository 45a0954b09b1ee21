"""Lint: every problem is refused with file, line and reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.lint import IN_SCRIPT, lint_library, opening_text
from bot.core.scripts import TemplateLibrary, load_library
from bot.core.yamlsource import SourceError


def test_builtin_templates_are_clean(library: TemplateLibrary) -> None:
    assert lint_library(library) == []
    assert len(library.scripts) == 6


@pytest.mark.parametrize("script_id", ["new_account_short", "dormant_full", "suspicious_txn_full"])
def test_openings_disclose_assistant_and_recording(
    library: TemplateLibrary, script_id: str
) -> None:
    text = opening_text(library.scripts[script_id], "示例银行")
    assert "智能语音助手" in text and "录音" in text


def _lint(root: Path) -> list[SourceError]:
    return lint_library(load_library(root))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def _only(errors: list[SourceError], pattern: str) -> SourceError:
    hits = [e for e in errors if re.search(pattern, e.message)]
    assert hits, f"no error matching {pattern!r} in {errors}"
    return hits[0]


def test_unknown_variable_is_located(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "q_occupation.yaml"
    _edit(f, "从事什么工作吗？", "从事什么工作吗？{{ salary_amount }}")
    err = _only(_lint(templates_copy), "unknown variable 'salary_amount'")
    assert err.file.endswith("q_occupation.yaml")
    assert err.line == _line_of(f, "salary_amount")
    assert err.field == "nodes.occupation.say"


def test_unknown_intent_and_unknown_node(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "q_custody_full.yaml"
    _edit(
        f,
        "custody_lent: custody_who",
        "custody_lend: custody_who\n      custody_lent: custody_whom",
    )
    errors = _lint(templates_copy)
    assert _only(errors, "unknown intent 'custody_lend'").line == _line_of(f, "custody_lend")
    assert _only(errors, "unknown node 'custody_whom'").line == _line_of(f, "custody_whom")


def test_unreachable_node(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "q_occupation.yaml"
    f.write_text(
        f.read_text(encoding="utf-8")
        + "  orphan:\n    topic: default\n    say: 孤立的节点\n    default: $next\n",
        encoding="utf-8",
    )
    err = _only(_lint(templates_copy), "unreachable")
    assert err.field == "nodes.orphan"
    assert err.line == _line_of(f, "orphan:")


def test_node_that_can_never_end(templates_copy: Path) -> None:
    f = templates_copy / "scripts" / "new_account_short.yaml"
    f.write_text(
        f.read_text(encoding="utf-8").replace(
            "with: {next: close_completed}", "with: {next: loop_a}"
        )
        + "nodes:\n  loop_a:\n    topic: default\n    say: 甲\n    default: loop_b\n  loop_b:\n    topic: default\n    say: 乙\n    default: loop_a\n",
        encoding="utf-8",
    )
    errors = [e for e in _lint(templates_copy) if "new_account_short" in e.file + e.message]
    assert {e.field for e in errors if "no way to end" in e.message} >= {
        "nodes.loop_a",
        "nodes.loop_b",
        "nodes.card_custody",
    }


def test_missing_opening_disclosure(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "identity_check.yaml"
    _edit(f, "本次通话将全程录音。", "")
    err = _only(_lint(templates_copy), "disclosure missing")
    assert "录音" in err.message
    assert err.field == "nodes.opening.say"


def test_account_detail_before_identity_is_refused(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "identity_check.yaml"
    _edit(
        f,
        "请问您是{{ holder_name }}{{ holder_honorific }}本人吗？",
        "关于尾号{{ card_last4 }}的卡，请问您是{{ holder_name }}本人吗？",
    )
    err = _only(_lint(templates_copy), "before identity is confirmed")
    assert "card_last4" in err.message and err.line == _line_of(f, "card_last4")


def test_account_detail_on_voicemail_is_refused(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "closings.yaml"
    _edit(
        f,
        "我们稍后会再次来电，再见。",
        "您尾号{{ card_last4 }}的卡有一笔{{ txn_amount | money }}的交易。",
    )
    errors = _lint(templates_copy)
    leaked = {e.message for e in errors if "before identity" in e.message}
    assert any("card_last4" in m for m in leaked) and any("txn_amount" in m for m in leaked)


def test_only_affirm_may_pass_the_identity_gate(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "identity_check.yaml"
    _edit(f, "default: close_unverified", "default: $on_success")
    _only(_lint(templates_copy), "only 'affirm' may lead past")


def test_template_syntax_error_line(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "q_fund_source.yaml"
    _edit(f, "{% else %}", "{% elsee %}")
    err = _only(_lint(templates_copy), "syntax")
    assert err.line == _line_of(f, "elsee")


def test_yaml_syntax_error_line_and_other_scripts_survive(templates_copy: Path) -> None:
    f = templates_copy / "scripts" / "dormant_full.yaml"
    _edit(f, "tiers: [medium, high]", "tiers: [medium, high")
    lib = load_library(templates_copy)
    err = _only(lint_library(lib), "invalid YAML")
    assert err.file.endswith("dormant_full.yaml") and err.line is not None
    assert "dormant_full" not in lib.scripts and "dormant_short" in lib.scripts


def test_schema_errors_name_the_field(templates_copy: Path) -> None:
    f = templates_copy / "scripts" / "dormant_short.yaml"
    _edit(f, "scenarios: [dormant]", "scenarios: [sleeping]")
    err = _only(_lint(templates_copy), "Input should be")
    assert err.field == "scenarios.0" and err.line == _line_of(f, "scenarios")


def test_block_parameters_must_be_bound(templates_copy: Path) -> None:
    f = templates_copy / "scripts" / "dormant_short.yaml"
    _edit(f, "with: {on_success: card_purpose}", "with: {on_succes: card_purpose}")
    errors = _lint(templates_copy)
    _only(errors, "needs parameter 'on_success'")
    _only(errors, "has no parameter 'on_succes'")


def test_each_message_keeps_its_id_and_values_for_a_translation(templates_copy: Path) -> None:
    """English stays what the CLI prints; the id and values give the same text translated,
    a block's problem wrapped once in the script that includes it."""
    f = templates_copy / "blocks" / "q_occupation.yaml"
    _edit(f, "从事什么工作吗？", "从事什么工作吗？{{ salary_amount }}")
    s = templates_copy / "scripts" / "dormant_short.yaml"
    _edit(s, "scenarios: [dormant]", "scenarios: [sleeping]")
    errors = _lint(templates_copy)
    fake = {
        "unknown variable '%(variable)s'": "VAR<%(variable)s>",
        IN_SCRIPT: "%(problem)s @%(script)s",
    }
    block = _only(errors, "unknown variable 'salary_amount'")
    assert block.template == IN_SCRIPT and block.text is not None
    assert str(block.text) == block.message
    assert re.fullmatch(r"VAR<salary_amount> @\w+", block.shown(lambda m: fake.get(m, m)))
    schema = _only(errors, "Input should be")  # pydantic's own text: no id, shown as it is
    assert schema.template == "" and schema.shown(lambda m: "X") == schema.message


def test_a_model_rule_is_a_message_id_behind_pydantics_prefix(templates_copy: Path) -> None:
    f = templates_copy / "blocks" / "q_occupation.yaml"
    f.write_text(
        f.read_text(encoding="utf-8") + "  bad:\n    say: 甲\n    next: x\n    end: completed\n",
        encoding="utf-8",
    )
    err = _only(_lint(templates_copy), "^Value error, a node needs exactly one of")
    assert err.template.startswith("a node needs exactly one of")
    assert err.shown(lambda m: "ZH" if m == err.template else m) == "ZH"
