"""Linking what was stored before the accounts' network existed (``bot db
link-entities``), or re-keying it all after the PII key rotated (``--rebuild``).

It can only use what is stored. The account's own data is whole, so its phone, ID,
card, holder and counterparty link as for new calls. Numbers callees said are stored
masked: they link only when their sealed original can be opened (a PII key configured
then and now, or kept in ``BOT_PII__OLD_KEYS``); otherwise they are counted as
``masked`` and left out. Names link from the stored text. Safe to repeat: a call that
has links already is skipped (``--rebuild`` drops every link first and starts over).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.store.links import (
    LABEL_KINDS,
    LINKS,
    NUMBER_KINDS,
    LinkKey,
    Mention,
    account_rows,
    mention_rows,
)
from bot.store.models import AccountRow, EntityRow
from bot.store.pii import SECRETS, associated_data
from bot.store.pii_crypto import KeyRing, PiiError, Sealed

log = logging.getLogger(__name__)
BATCH = 500
ACCOUNTS = AccountRow.__table__  # type: ignore[attr-defined]
ENTITIES = EntityRow.__table__  # type: ignore[attr-defined]
CALLS = sa.table("call_attempt", sa.column("id", sa.Integer), sa.column("account_pk", sa.Integer))
_ACCOUNT_COLUMNS = (
    "id",
    "account_id",
    "name",
    "phone",
    "phone_e164",
    "id_number",
    "txn_counterparty",
)


def link_stored(
    conn: Connection,
    key: LinkKey | None,
    keys: KeyRing | None,
    *,
    rebuild: bool = False,
    batch: int = BATCH,
) -> Counter[str]:
    """Link every account's own data and every stored call not linked yet; counts of
    ``accounts``, ``calls``, ``links`` written, ``masked`` numbers that could not be
    opened, ``no_key`` numbers not linked for want of a key, and ``stale`` links
    hashed under another key (``--rebuild`` re-keys them)."""
    counts: Counter[str] = Counter()
    if rebuild:
        conn.execute(sa.delete(LINKS))
    _link_accounts(conn, key, counts, batch)
    _link_calls(conn, key, keys, counts, batch)
    current = key.key_id if key else ""
    counts["stale"] = int(
        conn.execute(
            sa.select(sa.func.count()).where(LINKS.c.key_id.is_not(None), LINKS.c.key_id != current)
        ).scalar_one()
    )
    return counts


def _link_accounts(conn: Connection, key: LinkKey | None, counts: Counter[str], batch: int) -> None:
    last = 0
    columns = [ACCOUNTS.c[name] for name in _ACCOUNT_COLUMNS]
    while True:
        rows = conn.execute(
            sa.select(*columns).where(ACCOUNTS.c.id > last).order_by(ACCOUNTS.c.id).limit(batch)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        pks = [r.id for r in rows]
        conn.execute(sa.delete(LINKS).where(LINKS.c.account_pk.in_(pks), LINKS.c.call_id.is_(None)))
        values = [v for r in rows for v in account_rows(AccountRow(**r._mapping), key)]
        if values:
            conn.execute(sa.insert(LINKS), values)
        counts["accounts"] += len(rows)
        counts["links"] += len(values)


def _originals(
    conn: Connection, keys: KeyRing | None, entity_ids: list[int]
) -> dict[tuple[int, str], str]:
    """The sealed originals of these entities' value and text that can be opened."""
    if keys is None or not entity_ids:
        return {}
    rows = conn.execute(
        sa.select(
            SECRETS.c.row_id, SECRETS.c.column_name, SECRETS.c.key_id,
            SECRETS.c.nonce, SECRETS.c.ciphertext,
        ).where(
            SECRETS.c.table_name == "extracted_entity",
            SECRETS.c.column_name.in_(["value", "text"]),
            SECRETS.c.row_id.in_(entity_ids),
        )
    ).all()  # fmt: skip
    out: dict[tuple[int, str], str] = {}
    for r in rows:
        try:
            text = keys.open(
                Sealed(r.key_id, bytes(r.nonce), bytes(r.ciphertext)),
                associated_data("extracted_entity", r.row_id, r.column_name),
            )
        except PiiError as exc:
            log.warning("pii_secret extracted_entity/%s/%s: %s", r.row_id, r.column_name, exc)
            continue
        original = json.loads(text)
        if isinstance(original, str):
            out[(r.row_id, r.column_name)] = original
    return out


def _link_calls(
    conn: Connection,
    key: LinkKey | None,
    keys: KeyRing | None,
    counts: Counter[str],
    batch: int,
) -> None:
    linkable = sa.and_(ENTITIES.c.label.in_(sorted(LABEL_KINDS)), ENTITIES.c.negated.is_(False))
    linked = sa.select(LINKS.c.call_id).where(LINKS.c.call_id == ENTITIES.c.call_id).exists()
    last = 0
    while True:
        call_ids = list(
            conn.execute(
                sa.select(ENTITIES.c.call_id)
                .where(linkable, ENTITIES.c.call_id > last, ~linked)
                .group_by(ENTITIES.c.call_id)
                .order_by(ENTITIES.c.call_id)
                .limit(batch)
            ).scalars()
        )
        if not call_ids:
            return
        last = call_ids[-1]
        owners = dict(
            conn.execute(
                sa.select(CALLS.c.id, CALLS.c.account_pk).where(CALLS.c.id.in_(call_ids))
            ).all()
        )
        entities = conn.execute(
            sa.select(
                ENTITIES.c.id, ENTITIES.c.call_id, ENTITIES.c.label, ENTITIES.c.value,
                ENTITIES.c.text, ENTITIES.c.negated,
            ).where(ENTITIES.c.call_id.in_(call_ids), linkable).order_by(ENTITIES.c.id)
        ).all()  # fmt: skip
        masked = [
            e.id
            for e in entities
            if LABEL_KINDS[e.label] in NUMBER_KINDS and "*" in (e.value + e.text)
        ]
        originals = _originals(conn, keys, masked)
        per_call: dict[int, list[Mention]] = {}
        for e in entities:
            value = originals.get((e.id, "value"), e.value)
            text = originals.get((e.id, "text"), e.text)
            if LABEL_KINDS[e.label] in NUMBER_KINDS:
                if key is None:
                    counts["no_key"] += 1
                    continue
                if "*" in value and "*" in text:
                    counts["masked"] += 1
                    continue
            per_call.setdefault(e.call_id, []).append(
                Mention(e.label, value, text, e.negated, e.id)
            )
        values: list[dict[str, Any]] = []
        for call_id, mentions in per_call.items():
            values += mention_rows(owners[call_id], call_id, mentions, key)
        if values:
            conn.execute(sa.insert(LINKS), values)
        counts["calls"] += len(call_ids)
        counts["links"] += len(values)
