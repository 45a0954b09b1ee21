"""How the audit page shows an event: the actor by kind and name (用户 / 令牌 / 外呼进程),
the action by its label, the detail as key/value pairs with translated key names and
vocabulary values by their labels, and the client's address. Pure (no request): the
page passes its gettext. The API and the CSV export keep the stored, English keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.store.models import AuditEventRow
from bot.web.audit import CLIENT_KEY
from bot.web.i18n import N_
from bot.web.labels import label

Gettext = Callable[[str], str]

#: Known detail keys -> their label (a key not listed is shown as it is).
DETAIL_KEYS: dict[str, str] = {
    "reason": N_("Reason"),
    "before": N_("Before"),
    "after": N_("After"),
    "name": N_("Object name"),
    "username": N_("User name"),
    "role": N_("Role"),
    "via": N_("Via"),
    "call_id": N_("Call"),
    "agree": N_("Agreed"),
    "band": N_("Band"),
    "disposition": N_("Disposition"),
    "turn_corrections": N_("Turns corrected"),
    "outbox_id": N_("Correction to the bank (outbox)"),
    "days": N_("Days"),
    "rows": N_("Rows"),
    "kind": N_("Kind"),
    "filters": N_("Filters"),
    "method": N_("Method"),
    "path": N_("Path"),
    "permission": N_("Permission"),
    "prefix": N_("Token prefix"),
    "digest": N_("Digest"),
    "stage": N_("Stage"),
    "problems": N_("Problems"),
    "errors": N_("Errors"),
    "version": N_("Version"),
    "source_version": N_("Source version"),
    "published": N_("Published set"),
    "sets": N_("Test sets"),
    "accounts": N_("Accounts"),
    "campaign": N_("Campaign"),
    "encoding": N_("Encoding"),
    "read": N_("Rows read"),
    "loaded": N_("Rows loaded"),
    "rejected": N_("Rows rejected"),
    "inserted": N_("Rows inserted"),
    "updated": N_("Rows updated"),
    "decrypted": N_("Decrypted"),
    "undecryptable": N_("Could not be decrypted"),
    "author": N_("Author"),
    "disabled": N_("Disabled"),
    "locked_until": N_("Locked until"),
    "failed_logins": N_("Failed sign-ins"),
    "note": N_("Note"),
}
#: Detail keys whose values are vocabulary values: key -> label kind.
VALUE_KINDS = {"band": "band", "disposition": "disposition", "role": "role"}
#: How the actor string's prefix names its kind; a plain name is a user.
ACTOR_KINDS = (("token:", N_("token %(name)s")), ("worker:", N_("worker %(name)s")))
USER = N_("user %(name)s")
CLI = N_("command line")


@dataclass(frozen=True)
class Pair:
    key: str
    value: str
    #: The stored key (for a data- attribute and tests).
    raw: str


@dataclass(frozen=True)
class EventView:
    row: AuditEventRow
    actor: str
    action: str
    pairs: list[Pair]
    client: str


def actor_text(actor: str, _: Gettext = str) -> str:
    """``token:nightly`` -> 令牌 nightly, ``worker:host:12`` -> 外呼进程 host:12, ``cli``
    -> 命令行, ``lin`` -> 用户 lin."""
    if actor == "cli":
        return _(CLI)
    for prefix, text in ACTOR_KINDS:
        if actor.startswith(prefix):
            return _(text) % {"name": actor[len(prefix) :]}
    return _(USER) % {"name": actor}


def value_text(key: str, value: Any, action: str, _: Gettext = str) -> str:
    """One detail value as shown: labels for vocabulary values, yes/no, a dash for none,
    nested values compact."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if key in ("before", "after") and action.startswith("campaign_"):
        return label("campaign_state", str(value), _)
    if key in VALUE_KINDS and isinstance(value, str):
        return label(VALUE_KINDS[key], value, _)
    if isinstance(value, dict):
        return (
            ", ".join(f"{k}: {value_text(str(k), v, action, _)}" for k, v in value.items()) or "–"
        )
    if isinstance(value, list):
        return ", ".join(value_text(key, v, action, _) for v in value) or "–"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def event_view(row: AuditEventRow, _: Gettext = str) -> EventView:
    detail = row.detail if isinstance(row.detail, dict) else {"detail": row.detail}
    pairs = [
        Pair(_(DETAIL_KEYS[k]) if k in DETAIL_KEYS else k, value_text(k, v, row.action, _), k)
        for k, v in detail.items()
        if k != CLIENT_KEY
    ]
    return EventView(
        row=row,
        actor=actor_text(row.actor, _),
        action=label("audit_action", row.action, _),
        pairs=pairs,
        client=str(detail.get(CLIENT_KEY) or ""),
    )
