"""Persona files: the public sample loads; bad files are named with their field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.yamlsource import SourceFileError
from bot.sim.personas import Persona, load_dir, load_persona
from tests.conftest import SHARED

GOOD = (SHARED / "personas" / "p02_lent_to_friend.yaml").read_text(encoding="utf-8")


def test_public_sample_loads() -> None:
    personas, errors = load_dir(SHARED / "personas")
    assert errors == [] and len(personas) == 10
    p02 = next(p for p in personas if p.id == "p02_lent_to_friend")
    assert p02.account.txn is not None and p02.account.txn.counterparty == "王强"
    case = p02.to_case()
    assert case.expected["risk_band"] == "high" and case.answers["card_custody"].startswith(
        "这张卡"
    )


@pytest.mark.parametrize(
    "old, new, field, message",
    [
        ("outcome: completed", "outcome: finished", "expected.outcome", "completed"),
        ("risk_band: high", "risk_band: severe", "expected.risk_band", "low"),
        ("model_score: 0.81", "model_score: 1.81", "account.model_score", "less than or equal"),
        ("scenario: suspicious_txn", "scenario: odd", "account.scenario", "new_account"),
        ("  card_purpose:", "  card_purpos:", "answers.card_purpos", "card_purpose"),
    ],
)
def test_bad_file_names_file_field_and_line(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    assert old in GOOD
    f = tmp_path / "bad.yaml"
    f.write_text(GOOD.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SourceFileError) as exc:
        load_persona(f)
    err = exc.value.errors[0]
    assert err.file == "bad.yaml" and err.field.startswith(field) and message in err.message
    assert (
        err.line is not None
        and new.split(":")[0].strip() in f.read_text(encoding="utf-8").splitlines()[err.line - 1]
    )


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        GOOD.replace("p02_lent_to_friend", "p02_copy"), encoding="utf-8"
    )
    (tmp_path / "d.yaml").write_text(GOOD, encoding="utf-8")
    personas, errors = load_dir(tmp_path)
    assert [p.id for p in personas] == ["p02_lent_to_friend", "p02_copy"]
    assert [e.file for e in errors] == ["b.yaml", "d.yaml"]
    assert "invalid YAML" in str(errors[0]) and "duplicate id" in str(errors[1])


def test_from_dict_validates_synthetic_personas() -> None:
    with pytest.raises(SourceFileError, match="<synthetic>"):
        Persona.from_dict(
            {"id": "x", "account": {}, "answers": {}, "expected": {"outcome": "completed"}}
        )
