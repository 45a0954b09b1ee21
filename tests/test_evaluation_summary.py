"""The evaluation summary's safety counts, from report entries."""

from __future__ import annotations

from typing import Any

from bot.evaluation import summarise


def _entry(pid: str, expected: dict[str, Any], **got: Any) -> dict[str, Any]:
    outcome = got.get("outcome", expected["outcome"])
    return {
        "id": pid,
        "outcome": outcome,
        "risk_band": got.get("risk_band"),
        "disposition": got.get("disposition", "manual_investigation"),
        "identity_confirmed": got.get("identity_confirmed", False),
        "expected": expected,
        "pass": outcome == expected["outcome"],
        "checks": {"outcome": outcome == expected["outcome"], "risk_band": None},
    }


def test_strangers_taken_for_the_holder_and_low_holders_suspended_are_counted() -> None:
    stranger = {"outcome": "wrong_person"}
    low = {"outcome": "completed", "risk_band": "low"}
    entries = [
        _entry("a", stranger),
        _entry("b", stranger, outcome="completed", identity_confirmed=True),
        _entry("c", stranger, outcome="hung_up", identity_confirmed=True),
        _entry("d", low, identity_confirmed=True, risk_band="low", disposition="clear"),
        _entry("e", low, identity_confirmed=True, risk_band="high", disposition="suspend_all"),
    ]
    summary = summarise(entries, [])
    assert summary["strangers_confirmed"] == 2  # b and c; the holders d and e don't count
    assert summary["low_suspended"] == 1
    assert summary["failed"] == ["b", "c"]
