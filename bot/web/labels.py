"""Human labels for vocabulary values (``suspend_non_counter`` -> 暂停非柜面交易): every
page shows these, never the raw value (the JSON API keeps the values). The English label
is the gettext message id; the catalogues translate it."""

from __future__ import annotations

from collections.abc import Callable

#: kind -> value -> English label (the message id).
LABELS: dict[str, dict[str, str]] = {
    "disposition": {
        "clear": "Clear",
        "monitor": "Monitor",
        "limit_non_counter": "Limit non-counter transactions",
        "suspend_non_counter": "Suspend non-counter transactions",
        "suspend_all": "Suspend all transactions",
        "retry_call": "Call again",
        "manual_investigation": "Manual investigation",
    },
    "outcome": {
        "completed": "Completed",
        "wrong_person": "Wrong person",
        "refused": "Refused",
        "voicemail": "Voicemail",
        "no_answer": "No answer",
        "busy": "Busy",
        "failed": "Failed",
        "hung_up": "Hung up",
    },
    "band": {"low": "Low", "medium": "Medium", "high": "High"},
    "scenario": {
        "new_account": "New account",
        "dormant": "Dormant account",
        "suspicious_txn": "Suspicious transactions",
    },
    "role": {
        "reviewer": "Reviewer",
        "compliance": "Compliance",
        "supervisor": "Supervisor",
        "admin": "Administrator",
    },
    "campaign_state": {
        "draft": "Draft",
        "running": "Running",
        "paused": "Paused",
        "cancelled": "Cancelled",
        "completed": "Completed",
    },
    "review_reason": {"suspicious": "Suspicious", "sample": "Random sample"},
    "alert": {
        "failure": "failure rate",
        "refusal": "refusal rate",
        "connect": "connect rate",
        "stalled": "stalled",
    },
}


def label(kind: str, value: str | None, gettext: Callable[[str], str] = str) -> str:
    """The translated label of ``value``; an unknown value is shown as it is (a new
    vocabulary value must not break a page), None as an en dash."""
    if value is None or value == "":
        return "–"
    found = LABELS.get(kind, {}).get(str(value))
    return gettext(found) if found else str(value)
