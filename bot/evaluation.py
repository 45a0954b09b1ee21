"""``bot eval``: run personas through the investigation and compare with their ground truth.

The report format is a contract (``../shared/design.md``): ``{"summary": {...},
"personas": [...]}``. One persona that cannot be loaded or that breaks the run is
reported and the others still run.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.core.account import Account
from bot.core.investigation import CallResult, Investigator
from bot.core.vocab import EntityLabel
from bot.sim.callee import PersonaCallee

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PersonaCase:
    """What the evaluation needs from a persona (file or synthetic)."""

    id: str
    account: Account
    answers: dict[str, str | None]
    expected: dict[str, Any]
    #: The caller's voice the persona asks for (audio mode with a multi-voice root).
    voice: str | None = None


def _same_value(label: str, expected: str, found: Iterable[str]) -> bool:
    exp = str(expected)
    for value in found:
        if value == exp:
            return True
        if label == "amount":
            try:
                if float(value) == float(exp):
                    return True
            except ValueError:
                continue
    return False


def entity_check(expected: dict[str, Any], result: CallResult) -> tuple[list[str], list[str]]:
    """Expected ``label: value`` pairs found / missing (value or surface text matches)."""
    found: list[str] = []
    missing: list[str] = []
    extracted = result.entities
    for label, values in (expected or {}).items():
        for value in values if isinstance(values, list) else [values]:
            pool = extracted.get(label, []) + sorted(_texts(result, label))
            (found if _same_value(label, str(value), pool) else missing).append(f"{label}={value}")
    return found, missing


def _texts(result: CallResult, label: str) -> set[str]:
    try:
        return result.entity_texts(EntityLabel(label))
    except ValueError:
        return set()


def explanation(result: CallResult) -> list[dict[str, Any]]:
    return [
        {
            "feature": h.feature,
            "description": h.description,
            "category": h.category,
            "contribution": round(h.contribution, 3),
            "evidence": [
                {"topic": e.topic, "answer": e.answer, "match": e.match} for e in h.evidence
            ],
        }
        for h in result.assessment.hits
    ]


def persona_entry(case: PersonaCase, result: CallResult) -> dict[str, Any]:
    exp = case.expected
    outcome_ok = result.record.outcome is not None and result.record.outcome.value == exp.get(
        "outcome"
    )
    band = result.assessment.band.value if result.assessment.band else None
    band_ok = (
        None if "risk_band" not in exp or exp.get("risk_band") is None else band == exp["risk_band"]
    )
    found, missing = entity_check(exp.get("entities") or {}, result)
    return {
        "id": case.id,
        "outcome": result.record.outcome.value if result.record.outcome else None,
        "risk_band": band,
        "risk_score": result.assessment.score,
        "disposition": result.decision.disposition.value,
        "needs_review": result.decision.needs_review,
        "entities": result.entities,
        "identity_confirmed": result.record.identity_confirmed,
        "expected": exp,
        "pass": bool(outcome_ok and band_ok is not False and not missing),
        "checks": {
            "outcome": outcome_ok,
            "risk_band": band_ok,
            "entities_found": found,
            "entities_missing": missing,
        },
        "script": result.record.script_ref,
        "ruleset": result.assessment.ruleset_version,
        "nlu_model": result.nlu_version,
        "band_reason": result.assessment.band_reason,
        "explanation": explanation(result),
        "transcript": [
            {
                "role": t.role,
                "topic": t.topic,
                "text": t.text,
                **({"intent": t.nlu.intent.intent.value} if t.nlu else {}),
                **({"reading": t.nlu.reading.labels()} if t.nlu and t.nlu.reading.slots else {}),
                **({"decision": t.decision} if t.decision else {}),
            }
            for t in result.record.turns
            if t.text or t.role == "callee"
        ],
    }


def failure_reasons(entry: dict[str, Any], *, features: int = 3) -> list[str]:
    """Why a report entry failed, one line per failed check, in words a person can act
    on: what was wanted, what came out, and what in the call made it so."""
    if "error" in entry:
        return [f"run broke: {entry['error']}"]
    checks, exp = entry["checks"], entry["expected"]
    out: list[str] = []
    if not checks["outcome"]:
        turns = [t for t in entry["transcript"] if t["role"] == "callee" and t.get("decision")]
        last = turns[-1] if turns else None
        said = (
            f"; last answer [{last['topic']}] “{last['text']}” read as "
            f"{', '.join(last.get('reading', [])) or '-'} / intent {last.get('intent', '-')}"
            f" -> {last['decision']}"
            if last
            else ""
        )
        out.append(f"outcome {entry['outcome']} (want {exp.get('outcome')}){said}")
    if checks["risk_band"] is False:
        parts = []
        for hit in entry["explanation"][:features]:
            ev = hit["evidence"][0] if hit["evidence"] else {}
            where = f" [{ev.get('topic')}] {ev.get('match')}" if ev.get("match") else ""
            parts.append(f"{hit['feature']} {hit['contribution']:+.1f}{where}")
        reason = f"; {entry['band_reason']}" if entry.get("band_reason") else ""
        out.append(
            f"band {entry['risk_band']} (want {exp.get('risk_band')}), score "
            f"{entry['risk_score']:.2f}{reason}; " + ("; ".join(parts) or "no feature fired")
        )
    if checks["entities_missing"]:
        got = entry["entities"]
        detail = []
        for item in checks["entities_missing"]:
            label = item.split("=", 1)[0]
            detail.append(f"{item} (extracted {label}: {', '.join(got.get(label, [])) or 'none'})")
        out.append("missing " + "; ".join(detail))
    return out


def error_entry(case: PersonaCase, exc: Exception) -> dict[str, Any]:
    """The report entry of a persona whose run broke (the others still run)."""
    return {
        "id": case.id,
        "outcome": None,
        "risk_band": None,
        "risk_score": None,
        "disposition": None,
        "needs_review": None,
        "entities": {},
        "expected": case.expected,
        "pass": False,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc(limit=5),
    }


def run_cases(
    investigator: Investigator, cases: Iterable[PersonaCase], progress: Progress | None = None
) -> list[dict[str, Any]]:
    entries = []
    for case in cases:
        try:
            result = investigator.run_text(case.account, PersonaCallee(case.answers))
            entries.append(persona_entry(case, result))
        except Exception as exc:  # one broken persona must not stop the run
            entries.append(error_entry(case, exc))
        if progress:
            progress(case.id)
    return entries


def summarise(entries: list[dict[str, Any]], load_errors: list[str]) -> dict[str, Any]:
    n = len(entries)
    outcome_ok = sum(1 for e in entries if e.get("checks", {}).get("outcome"))
    banded = [e for e in entries if e["expected"].get("risk_band")]
    band_ok = sum(1 for e in banded if e.get("checks", {}).get("risk_band"))
    found = sum(len(e.get("checks", {}).get("entities_found", [])) for e in entries)
    missing = sum(len(e.get("checks", {}).get("entities_missing", [])) for e in entries)
    missing += sum(
        len(v) if isinstance(v, list) else 1
        for e in entries
        if "error" in e
        for v in (e["expected"].get("entities") or {}).values()
    )
    confusion: dict[str, dict[str, int]] = {}
    for e in banded:
        row = confusion.setdefault(e["expected"]["risk_band"], {})
        got = str(e["risk_band"] if e["outcome"] == e["expected"].get("outcome") else e["outcome"])
        row[got] = row.get(got, 0) + 1
    return {
        "n": n,
        "passed": sum(1 for e in entries if e["pass"]),
        "outcome_accuracy": round(outcome_ok / n, 4) if n else None,
        "risk_band_accuracy": round(band_ok / len(banded), 4) if banded else None,
        "entity_recall": round(found / (found + missing), 4) if found + missing else None,
        "errors": load_errors + [f"{e['id']}: {e['error']}" for e in entries if "error" in e],
        "failed": [e["id"] for e in entries if not e["pass"]],
        #: Expected band -> what came out (a band, or the outcome when the call did not
        #: complete as expected).
        "band_confusion": confusion,
        #: Callers who are not the holder but were taken for the holder (and then told
        #: what the bot says only to a holder): the number that must stay 0.
        "strangers_confirmed": sum(
            1
            for e in entries
            if e["expected"].get("outcome") == "wrong_person" and e.get("identity_confirmed")
        ),
        #: Holders whose true band is low but whose account the bot would suspend.
        "low_suspended": sum(
            1
            for e in banded
            if e["expected"]["risk_band"] == "low"
            and str(e.get("disposition", "")).startswith("suspend")
        ),
    }
