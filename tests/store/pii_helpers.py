"""Shared by the numbers-at-rest tests: a scan of every text and JSON column of every
table for numbers in clear, and fresh PII keys."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Collection, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.core.masking import SPOKEN_DIGITS

#: The bank's own reference data for the account, stored as the bank gives it (it
#: dials and matches on it); the scan still proves no callee number lands there.
BANK_COLUMNS = {
    ("account", "account_id"), ("account", "phone"), ("account", "phone_e164"),
    ("account", "id_number"), ("dnc_entry", "phone_e164"),
}  # fmt: skip
#: Columns whose values are not anyone's number but may look like one: a key id is 16
#: random hex digits, all of them decimal one time in about 1,800.
NOT_PERSONAL = {("pii_secret", "key_id")}

#: A card (13-19 digits), an 18-character ID or an 11-digit mobile, standing alone.
CLEAR = re.compile(r"(?<![0-9A-Za-z])(?:\d{13,19}|[1-9]\d{16}[0-9Xx]|1[3-9]\d{9})(?![0-9A-Za-z])")

#: The tables a scan of a fully migrated database must find (a scan of nothing finds
#: nothing).
HEAD_TABLES = ("turn", "extracted_entity", "verdict", "outbox", "audit_event", "pii_secret")


def normalised(text: str) -> str:
    """Chinese digits as Arabic ones, separators between digits dropped: a number in
    any spelling the callee used becomes one digit run."""
    text = "".join(SPOKEN_DIGITS.get(c, c) for c in text)
    return re.sub(r"(?<=\d)[ \-](?=\d)", "", text)


def _texts(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return None  # numbers, dates, flags, bytes (ciphertexts, model archives)


def scan(
    engine: Engine, secrets: Iterable[str], require: Collection[str] = HEAD_TABLES
) -> tuple[list[str], int]:
    """Clear numbers in every text and JSON column of every table: any of ``secrets``
    (bare digits) anywhere, and anything that looks like a card, ID or mobile outside
    the bank's own columns; and how many values were read. The tables in ``require``
    must exist."""
    secrets = list(secrets)
    found: list[str] = []
    read = 0
    meta = sa.MetaData()
    meta.reflect(engine)
    assert set(require) <= set(meta.tables), sorted(meta.tables)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    text = _texts(value)
                    if text is None:
                        continue
                    read += 1
                    flat = normalised(text)
                    hits = [s for s in secrets if s in flat]
                    if (table.name, column) not in BANK_COLUMNS | NOT_PERSONAL:
                        hits += CLEAR.findall(flat)
                    found += [f"{table.name}.{column}: {h} in {text[:80]!r}" for h in hits]
    return found, read


def new_key() -> str:
    """A PII key as an operator makes one: base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(32)).decode()
