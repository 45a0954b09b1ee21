"""The reading corpus: labelled answers, one JSON object per line.

Each row is one callee answer to one question with the schema an investigator filled
(:mod:`nlu.reading.schema`)::

    {"topic": "card_custody", "text": "卡在我自己手上，没借过谁", "acts": ["answer"],
     "holder": "self", "custody": [], "funds": [], "counterparty": null,
     "entities": {}, "note": "optional"}

Files under ``nlu/reading/corpus/`` are the training data; which of them are held out
is decided by their name (``heldout*.jsonl`` is never trained on). A bad row is reported
with its file and line and the other rows still load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.vocab import Topic
from nlu.normalize import normalize
from nlu.reading.features import mask_names
from nlu.reading.schema import FIELDS, label_key

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
HELDOUT_PREFIX = "heldout"
_TOPICS = frozenset(t.value for t in Topic)


@dataclass(frozen=True, slots=True)
class Row:
    topic: str
    text: str
    labels: frozenset[str]
    entities: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""


@dataclass
class CorpusErrors:
    messages: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{where}: {message}")


def parse_row(data: Any, where: str) -> Row:
    """One row from its JSON value; ``ValueError`` names the first problem."""
    if not isinstance(data, dict):
        raise ValueError("a row must be a JSON object")
    topic, text = data.get("topic"), data.get("text")
    if topic not in _TOPICS:
        raise ValueError(f"topic {topic!r} is not one of {', '.join(sorted(_TOPICS))}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    labels: set[str] = set()
    for name, (enum, multi) in FIELDS.items():
        value = data.get(name)
        if value is None:
            continue
        values = value if multi else [value]
        if multi and not isinstance(value, list):
            raise ValueError(f"{name} must be a list")
        for v in values:
            if v not in enum._value2member_map_:
                choices = ", ".join(m.value for m in enum)
                raise ValueError(f"{name}: {v!r} is not one of {choices}")
            labels.add(label_key(name, v))
    if not any(label.startswith("acts=") for label in labels):
        raise ValueError("acts must list at least one act")
    entities = data.get("entities") or {}
    if not isinstance(entities, dict):
        raise ValueError("entities must be an object")
    # Names as the reader sees them at run time: at the identity question the name said
    # is the holder's (the one asked for), elsewhere someone else's.
    names = [str(n) for n in entities.get("person") or []]
    holder, others = (names, []) if topic == "identity" else ([], names)
    masked = mask_names(normalize(text), holder, others)
    return Row(topic, masked, frozenset(labels), entities, where)


def load_file(path: Path, errors: CorpusErrors | None = None) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            rows.append(parse_row(json.loads(line), where))
        except (ValueError, json.JSONDecodeError) as exc:
            if errors is None:
                raise ValueError(f"{where}: {exc}") from exc
            errors.add(where, str(exc))
    return rows


def load_dir(
    directory: Path = CORPUS_DIR, *, heldout: bool = False, errors: CorpusErrors | None = None
) -> list[Row]:
    """Every row of the training files (or, with ``heldout``, of the held-out ones)."""
    files = sorted(directory.glob("*.jsonl"))
    chosen = [f for f in files if f.name.startswith(HELDOUT_PREFIX) == heldout]
    return [row for f in chosen for row in load_file(f, errors)]


def row_from_labels(topic: str, text: str, labels: Iterable[str]) -> dict[str, Any]:
    """A corpus row (the JSON form) from flat labels: what a reviewer's correction or a
    stored reading becomes in the training data. Invalid labels raise ``ValueError``."""
    row: dict[str, Any] = {"topic": topic, "text": text}
    for name, (_, multi) in FIELDS.items():
        row[name] = [] if multi else None
    for label in labels:
        name, _, value = label.partition("=")
        if name not in FIELDS:
            raise ValueError(f"{label!r} is not a reading value (field=value)")
        if FIELDS[name][1]:
            row[name].append(value)
        else:
            row[name] = value
    row["entities"] = {}
    parse_row(row, "correction")  # same checks as a corpus file
    return row


def dedupe(rows: Iterable[Row]) -> list[Row]:
    """First row of each (topic, text): writers sometimes repeat a short answer."""
    seen: set[tuple[str, str]] = set()
    out = []
    for row in rows:
        key = (row.topic, row.text)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out
