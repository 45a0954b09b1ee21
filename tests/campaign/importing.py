"""Import files for the importer tests, written the way a bank would export them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HEADER = [
    "account_id",
    "name",
    "phone",
    "scenario",
    "model_score",
    "card_last4",
    "id_number",
    "branch",
    "gender",
    "timezone",
    "txn_amount",
    "txn_date",
    "txn_counterparty",
]
#: Valid resident IDs (the check characters were verified by hand against GB 11643).
VALID_IDS = ("11010519491231002X", "440524188001010014")


def account_id(i: int) -> str:
    return f"62220000{i:08d}"


def phone(i: int) -> str:
    return f"138{i:08d}"


def good(i: int = 0, **over: str) -> dict[str, str]:
    row = {
        "account_id": account_id(i),
        "name": "张三",
        "phone": phone(i),
        "scenario": "dormant",
        "model_score": "0.42",
        "card_last4": f"{i % 10000:04d}",
        "id_number": VALID_IDS[i % 2],
        "branch": "深圳分行",
        "gender": "M",
        "timezone": "",
        "txn_amount": "49800",
        "txn_date": "2026-11-18",
        "txn_counterparty": "李四",
    }
    row.update(over)
    return row


def csv_text(rows: Iterable[dict[str, Any]], header: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, header or HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_csv(
    path: Path,
    rows: Iterable[dict[str, Any]],
    header: list[str] | None = None,
    encoding: str = "utf-8",
) -> Path:
    path.write_bytes(csv_text(rows, header).encode(encoding))
    return path


def write_jsonl(path: Path, objects: Iterable[dict[str, Any] | str]) -> Path:
    lines = [o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objects]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))
