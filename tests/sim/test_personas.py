"""Persona files: every shipped persona loads and follows the labelling guidelines; bad
files are refused with a message naming file, line and field; one bad file does not stop
the others."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bot.core.vocab import Topic
from bot.core.yamlsource import SourceFileError
from bot.settings import REPO_ROOT
from bot.sim.personas import Persona, load_dir, load_persona
from tests.conftest import SHARED

EVAL = REPO_ROOT / "eval_personas"
#: Id letters per split: tuning has our first personas (t), the retired first held-out
#: set (h) and three blind-written sets (u, v, w); heldout is blind-written by two other
#: writers (b, c).
SPLITS = {"tuning": "[thuvwr]", "heldout": "[bcx]"}
GOOD = (SHARED / "personas" / "p02_lent_to_friend.yaml").read_text(encoding="utf-8")
#: Labels whose expected value is the words said (others are normalised: 父亲, "800").
SURFACE_LABELS = {"person", "occupation", "employer", "location"}
TXN_TOPICS = {Topic.FUND_SOURCE, Topic.COUNTERPARTY}


def test_public_sample_loads() -> None:
    personas, errors = load_dir(SHARED / "personas")
    assert errors == [] and len(personas) == 10
    p02 = next(p for p in personas if p.id == "p02_lent_to_friend")
    assert p02.account.txn is not None and p02.account.txn.counterparty == "王强"
    case = p02.to_case()
    assert case.expected["risk_band"] == "high"
    assert (case.answers["card_purpose"] or "").startswith("当时开卡")


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_eval_personas_load(split: str) -> None:
    personas, errors = load_dir(EVAL / split)
    assert [str(e) for e in errors] == []
    assert len(personas) >= (45 if split == "tuning" else 25)


def _eval_personas() -> list[tuple[str, Persona]]:
    out = []
    for split in SPLITS:
        personas, _ = load_dir(EVAL / split)
        out += [(split, p) for p in personas]
    return out


def test_eval_personas_follow_the_guidelines() -> None:
    """The rules of eval_personas/README.md that a machine can check."""
    problems = []
    ids: Counter[str] = Counter()
    accounts: Counter[str] = Counter()
    for split, p in _eval_personas():
        ids[p.id] += 1
        accounts[p.account.account_id] += 1
        if not re.fullmatch(rf"{SPLITS[split]}\d{{2,3}}_[a-z0-9_]+", p.id):
            problems.append(f"{p.id}: id must be {SPLITS[split]}##_slug in {split}")
        if not (EVAL / split / f"{p.id}.yaml").is_file():
            problems.append(f"{p.id}: file name differs from the id")
        identity = p.answers.get(Topic.IDENTITY) or ""
        if re.search(r"\d|万|块|元|卡号|尾号", identity):
            problems.append(f"{p.id}: identity answer mentions account details")
        entities = p.expected.entities
        if p.expected.outcome == "completed":
            if not 1 <= len(entities) <= 4:
                problems.append(f"{p.id}: {len(entities)} entities (want 1 to 4)")
        elif entities:
            problems.append(f"{p.id}: only completed calls have entities")
        # Without a flagged transaction a script may skip fund source and counterparty.
        said = " ".join(
            a
            for topic, a in p.answers.items()
            if a and (p.account.txn is not None or topic not in TXN_TOPICS)
        )
        for label, value in entities.items():
            if label in SURFACE_LABELS and str(value) not in said:
                problems.append(f"{p.id}: {label}={value} is not in the answers")
    problems += [f"duplicate id {i}" for i, n in ids.items() if n > 1]
    problems += [f"duplicate account {a}" for a, n in accounts.items() if n > 1]
    assert problems == []


def test_every_split_covers_every_outcome_and_band() -> None:
    for split in SPLITS:
        personas, _ = load_dir(EVAL / split)
        kinds = {(p.expected.outcome.value, p.expected.risk_band) for p in personas}
        assert {
            ("completed", "low"),
            ("completed", "medium"),
            ("completed", "high"),
            ("wrong_person", None),
            ("refused", None),
            ("voicemail", None),
        } <= kinds, split


@pytest.mark.parametrize(
    "old, new, field, message",
    [
        (
            "outcome: completed",
            "outcome: finished",
            "expected.outcome",
            "'finished' is not one of completed, wrong_person, refused, voicemail",
        ),
        ("risk_band: high", "risk_band: severe", "expected.risk_band", "low, medium, high"),
        ("model_score: 0.81", "model_score: 1.81", "account.model_score", "less than or equal"),
        ("scenario: suspicious_txn", "scenario: odd", "account.scenario", "new_account"),
        ("  card_purpose:", "  card_purpos:", "answers.card_purpos", "not a topic key"),
        ("purpose: collect_for_others", "purpose: laundering", "expected.entities", "purpose"),
        ('amount: 49800, date: "2026-11-18"', "amount: lots", "account.txn.amount", "number"),
        ("relationship: 朋友", "relation: 朋友", "expected.entities.relation", "person"),
        ("  outcome: completed", "  outcomes: completed", "expected", ""),
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
    # The line is the one of the offending key (or of its mapping when a key is missing).
    assert err.line is not None
    line = f.read_text(encoding="utf-8").splitlines()[err.line - 1]
    assert err.field.split(".")[-1] in line or line.strip().endswith(":")
    assert str(exc.value).startswith(f"bad.yaml:{err.line}: {err.field}: ")


@pytest.mark.parametrize(
    "old, new, field, message",
    [
        ('"6225880100000002"', '"62258801"', "account", "expected 16 to 19"),
        ('"+8613800000002"', '"13800000002"', "account", "+86"),
        (
            "  risk_band: high\n",
            "",
            "expected",
            "a completed persona needs a risk_band",
        ),
        ("outcome: completed", "outcome: voicemail", "expected", "risk_band is only for"),
        ('amount: "800"', 'amount: "八百"', "expected.entities", "Arabic digits"),
        ("id: p02_lent_to_friend", "id: p02/lent", "id", "letters, digits"),
        ("language: zh", "language: 中文", "language", "pattern"),
    ],
)
def test_contract_rules_beyond_types(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    text = GOOD.replace("entities: {", 'entities: {amount: "800", ', 1)
    assert old in text
    f = tmp_path / "p.yaml"
    f.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SourceFileError) as exc:
        load_persona(f)
    messages = [(e.field, e.message) for e in exc.value.errors]
    assert any(fld.startswith(field) and message in msg for fld, msg in messages), messages


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        GOOD.replace("p02_lent_to_friend", "p02_copy"), encoding="utf-8"
    )
    (tmp_path / "d.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "e.yaml").write_text(
        GOOD.replace("p02_lent_to_friend", "p02_bad").replace("outcome: completed", "outcome: x"),
        encoding="utf-8",
    )
    (tmp_path / "notes.txt").write_text("not a persona", encoding="utf-8")
    personas, errors = load_dir(tmp_path)
    assert [p.id for p in personas] == ["p02_lent_to_friend", "p02_copy"]
    assert [e.file for e in errors] == ["b.yaml", "d.yaml", "e.yaml"]
    assert "invalid YAML" in str(errors[0]) and "duplicate id" in str(errors[1])
    assert str(errors[2]).startswith("e.yaml:") and "expected.outcome" in str(errors[2])


def test_from_dict_validates_synthetic_personas() -> None:
    with pytest.raises(SourceFileError, match="<synthetic>"):
        Persona.from_dict(
            {"id": "x", "account": {}, "answers": {}, "expected": {"outcome": "completed"}}
        )


def test_persona_round_trips_and_expected_stays_a_plain_dict() -> None:
    p = load_persona(SHARED / "personas" / "p02_lent_to_friend.yaml")
    again = Persona.from_dict(p.to_dict(), source="round-trip")
    assert again == p
    assert p.expected.to_dict() == {
        "outcome": "completed",
        "risk_band": "high",
        "entities": {"relationship": "朋友", "purpose": "collect_for_others", "person": "王强"},
    }
    voicemail = load_persona(SHARED / "personas" / "p09_voicemail.yaml")
    assert voicemail.to_case().expected == {"outcome": "voicemail", "entities": {}}


def test_unquoted_amount_is_read_as_text(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(GOOD.replace("entities: {", "entities: {amount: 800, ", 1), encoding="utf-8")
    assert load_persona(f).expected.entities["amount"] == "800"  # type: ignore[index]
