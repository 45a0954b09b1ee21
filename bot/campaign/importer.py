"""Accounts in: ``bot campaign import FILE --campaign NAME``.

Three stages, each usable on its own:

1. **read** (:func:`open_source`): decode the file strictly, line by line, in one
   encoding decided for the whole file (UTF-8, or GB18030, the usual export encoding of
   Chinese office software; see :mod:`bot.campaign.decoding`) and yield raw records with
   the physical line on which each starts (the CSV header is line 1; a quoted field
   spanning lines reports the line where its record starts). A line that does not
   decode, or a CSV record the ``csv`` module cannot parse (a cell over its field size
   limit), is a rejected record, not an unreadable file;
2. **validate** (:func:`validate_record`): turn one raw record into the columns of the
   ``account`` table, or into :class:`RowError` s. Pure; no reason ever holds an unmasked
   phone, ID or card number, so reports and logs can be shown to anyone;
3. **write** (:func:`import_file`): upsert accounts by ``account_id`` and make sure each
   has one work item in the campaign, one transaction per batch, with portable SQL only
   (select what exists, then insert or update) so that SQLite and PostgreSQL behave alike.

Decisions (see ``docs/campaigns.md``):

* an account id seen twice in one file: the first valid row is loaded, later ones are
  rejected naming the line of the first;
* columns absent from the file (or keys absent from a JSON object) leave the stored value
  alone on re-import; present but empty clears it;
* ``card_number`` is reduced to ``card_last4``: a full card number is never stored;
* a number on the do-not-call list still loads, but its work item is ``cancelled`` with
  ``last_outcome='dnc'`` (the same marking the dial queue uses), so it is never dialled;
* work items that are ``in_progress`` or ``done`` are never touched by a re-import;
* text the bot speaks (name, branch, counterparty) holds no control, invisible or
  bidirectional-control character (:mod:`bot.campaign.textcheck`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.campaign.decoding import Decoded, DecodeRefused, decode
from bot.campaign.formats import FileFormat
from bot.campaign.textcheck import refused_character
from bot.core.masking import mask_card, mask_id, mask_phone, mask_text
from bot.core.vocab import Scenario
from bot.store.db import session_scope
from bot.store.models import (
    AccountRow,
    CampaignAccountRow,
    CampaignRow,
    DncEntryRow,
    utcnow,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_REGION = "CN"
BATCH_SIZE = 500
#: Columns written by ``--rejects``: ignored on input, so a corrected rejects file can
#: be imported as it is.
REJECTS_COLUMNS = ("line", "error")
#: ``last_outcome`` of a work item cancelled because its number is on the DNC list.
DNC_OUTCOME = "dnc"

Columns = dict[str, Any]
Progress = Callable[[int, int], None]


_SUFFIXES = {".csv": FileFormat.CSV, ".jsonl": FileFormat.JSONL, ".ndjson": FileFormat.JSONL}


class ImportFailed(Exception):
    """The import could not run at all (nothing was written)."""


class UnreadableFile(ImportFailed):
    """Missing file, unknown format or encoding, or a CSV header without required columns."""


class CampaignClosed(ImportFailed):
    """The campaign is cancelled: work queued in it would never be dialled."""


@dataclass(frozen=True)
class RowError:
    """One problem with one record. ``reason`` is masked; ``raw`` (the record as given,
    for the rejects file) is kept out of ``repr`` so that logging an error leaks nothing."""

    line: int
    field: str
    reason: str
    raw: dict[str, Any] = dataclass_field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class RawRecord:
    """A record as read: its starting line, its fields, and a structural problem if any."""

    line: int
    data: dict[str, Any]
    problem: str | None = None


@dataclass(frozen=True)
class AccountRecord:
    """A valid record: the ``account`` columns it sets (only those the file gives)."""

    line: int
    values: Columns

    @property
    def account_id(self) -> str:
        return str(self.values["account_id"])

    @property
    def phone_e164(self) -> str:
        return str(self.values["phone_e164"])


@dataclass(frozen=True)
class RejectedRecord:
    line: int
    raw: dict[str, Any]
    errors: tuple[RowError, ...]


@dataclass
class ImportReport:
    campaign: str
    #: Records read (blank lines and the CSV header are not records).
    read: int = 0
    inserted: int = 0
    updated: int = 0
    #: Valid rows identical to what was stored (a re-import of the same file).
    unchanged: int = 0
    #: Work items created in the campaign (queued, or cancelled for DNC).
    items_created: int = 0
    #: Loaded rows whose number is on the do-not-call list (their items are cancelled).
    dnc_skipped: int = 0
    rejected_records: list[RejectedRecord] = dataclass_field(default_factory=list)
    seconds: float = 0.0
    #: How the file was decoded, e.g. ``"UTF-8 (detected)"``.
    encoding: str = ""

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated + self.unchanged

    @property
    def rejected(self) -> int:
        return len(self.rejected_records)

    @property
    def errors(self) -> list[RowError]:
        return [e for r in self.rejected_records for e in r.errors]


# -- read -------------------------------------------------------------------------------


def detect_format(path: Path, fmt: str | None = None) -> FileFormat:
    """``fmt`` if given, else the format the file's extension names."""
    if fmt:
        try:
            return FileFormat(fmt.lower())
        except ValueError:
            raise UnreadableFile(f"unknown format '{fmt}' (use csv or jsonl)") from None
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise UnreadableFile(
            f"{path.name}: cannot tell the format from the extension; pass --format csv|jsonl"
        )
    return found


@dataclass(frozen=True)
class Source:
    """A decoded import file; :meth:`records` may be iterated more than once."""

    path: Path
    format: FileFormat
    decoded: Decoded

    @property
    def text(self) -> str:
        return self.decoded.text

    def records(self) -> Iterator[RawRecord]:
        if self.format is FileFormat.CSV:
            return _csv_records(self.decoded)
        return _jsonl_records(self.decoded)

    def count(self) -> int:
        return sum(1 for _ in self.records())


def open_source(path: Path, fmt: str | None = None, encoding: str | None = None) -> Source:
    """Read and decode ``path`` (in ``encoding`` if given, else detected); raises
    :class:`UnreadableFile` when it cannot be used (also for a CSV header that lacks a
    required column, or does not decode: every row would fail)."""
    file_format = detect_format(path, fmt)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from None
    try:
        decoded = decode(data, encoding)
    except DecodeRefused as exc:
        raise UnreadableFile(f"{path.name}: {exc}") from None
    source = Source(path, file_format, decoded)
    if file_format is FileFormat.CSV:
        next(source.records(), None)  # checks the header now, before anything is written
    return source


def _physical_lines(text: str) -> io.StringIO:
    """Lines split on \\n, \\r\\n or \\r only (``str.splitlines`` also splits on
    characters such as U+2028 that may legally sit inside a field)."""
    return io.StringIO(text, newline="")


def _csv_header(cells: list[str]) -> list[str]:
    header = [c.strip().lower() for c in cells]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise UnreadableFile(f"CSV header repeats column(s): {', '.join(duplicated)}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UnreadableFile(f"CSV header lacks required column(s): {', '.join(missing)}")
    return header


#: Characters of a broken record kept for the rejects file (a cell over the ``csv``
#: field size limit is over 131,072 characters).
BROKEN_RECORD_KEPT = 1_000


class _LineFeed:
    """The physical lines given to ``csv.reader``: counted, and those of the record
    being read kept, to step past a record the reader gave up on."""

    def __init__(self, text: str) -> None:
        self._lines = _physical_lines(text)
        self.number = 0
        self._record: list[str] = []

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        self._record.append(line)
        return line

    def take(self) -> list[str]:
        """The lines of the record just read; the next record starts afresh."""
        lines, self._record = self._record, []
        return lines

    def skip_open_quote(self) -> bool:
        """After a ``csv.Error``, the reader drops the rest of the line and starts the
        next record on the next line. If the broken record is inside a quoted field
        (an odd number of quotes so far; ``""`` inside quotes counts two), read on to
        the line that closes it, so that no line of that field is taken for a record.
        False if no line closes it (the quote runs to the end of the file)."""
        quotes = sum(line.count('"') for line in self._record)
        while quotes % 2:
            line = next(self, None)
            if line is None:
                return False
            quotes += line.count('"')
        return True


def _broken(start: int, end: int, lines: list[str], exc: csv.Error, closed: bool) -> RawRecord:
    """A record ``csv`` gave up on (lines ``start`` to ``end``), for the rejects file."""
    text = "".join(lines).rstrip("\r\n")
    if len(text) > BROKEN_RECORD_KEPT:
        text = text[: BROKEN_RECORD_KEPT - 1] + "…"
    span = f" (lines {start}-{end})" if end > start else ""
    if not closed:
        span = f" (lines {start}-{end}: a quote opened here is never closed)"
    if "field larger than field limit" in str(exc):
        problem = f"a cell is longer than {csv.field_size_limit():,} characters{span}"
    else:
        problem = f"not readable as CSV ({exc}){span}"
    return RawRecord(start, {"_text": text}, problem)


def _undecoded(decoded: Decoded, start: int, end: int) -> str | None:
    """Why lines ``start`` to ``end`` did not decode, or None if they did."""
    reasons = [decoded.bad_lines[n] for n in range(start, end + 1) if n in decoded.bad_lines]
    if not reasons:
        return None
    more = f" (and {len(reasons) - 1} more of its lines)" if len(reasons) > 1 else ""
    return reasons[0] + more


def _csv_records(decoded: Decoded) -> Iterator[RawRecord]:
    feed = _LineFeed(decoded.text)
    reader = csv.reader(feed)
    header: list[str] | None = None
    while True:
        start = feed.number + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if header is None:
                raise UnreadableFile(f"CSV error in the header: {exc}") from None
            closed = feed.skip_open_quote()
            yield _broken(start, feed.number, feed.take(), exc, closed)
            continue
        feed.take()
        if not any(c.strip() for c in cells):
            continue  # blank line
        undecoded = _undecoded(decoded, start, feed.number)
        if header is None:
            if undecoded:
                raise UnreadableFile(f"the header does not decode: {undecoded}")
            header = _csv_header(cells)
            continue
        record = _csv_record(start, header, cells)
        yield RawRecord(start, record.data, undecoded) if undecoded else record


def _csv_record(line: int, header: list[str], cells: list[str]) -> RawRecord:
    data = dict(zip(header, cells, strict=False))
    if len(cells) == len(header):
        return RawRecord(line, data)
    if len(cells) > len(header):
        data["_overflow"] = ",".join(cells[len(header) :])
    return RawRecord(
        line, data, f"has {len(cells)} fields, the header has {len(header)} (a stray comma?)"
    )


def _jsonl_records(decoded: Decoded) -> Iterator[RawRecord]:
    for number, line in enumerate(_physical_lines(decoded.text), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if number in decoded.bad_lines:
            yield RawRecord(number, {"_text": stripped}, decoded.bad_lines[number])
            continue
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            yield RawRecord(number, {"_text": stripped}, f"not valid JSON ({exc.msg})")
            continue
        except RecursionError:
            yield RawRecord(number, {"_text": stripped[:BROKEN_RECORD_KEPT]}, "nested too deeply")
            continue
        if not isinstance(obj, dict):
            yield RawRecord(number, {"_text": stripped}, "not a JSON object")
            continue
        yield RawRecord(number, _flatten_txn({str(k).lower(): v for k, v in obj.items()}))


def _flatten_txn(data: dict[str, Any]) -> dict[str, Any]:
    """Accept the persona contract's nested ``txn: {amount, date, counterparty}``."""
    txn = data.get("txn")
    if not isinstance(txn, dict):
        return data
    flat = {k: v for k, v in data.items() if k != "txn"}
    for key, value in txn.items():
        flat.setdefault(f"txn_{key}", value)
    return flat


# -- validate ---------------------------------------------------------------------------


class FieldProblem(ValueError):
    """A field's value is unusable; the message is shown to people, so it is masked."""


def _shown(value: str, limit: int = 40) -> str:
    """A value quoted for a message: shortened, any PII in it masked."""
    short = value if len(value) <= limit else value[: limit - 1] + "…"
    return repr(mask_text(short))


def _text_of(value: Any) -> str:
    """A JSON or CSV value as stripped text; numbers become their usual spelling."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldProblem(f"must be text or a number, not {type(value).__name__}")
    return value.strip() if isinstance(value, str) else repr(value)


def _check_characters(text: str, spoken: bool) -> None:
    refused = refused_character(text, spoken=spoken)
    if refused:
        raise FieldProblem(f"{refused}: not allowed in text the bot speaks" if spoken else refused)


def _bounded(name: str, limit: int) -> Callable[[str], Columns]:
    def parse(value: str) -> Columns:
        if len(value) > limit:
            raise FieldProblem(f"longer than {limit} characters")
        return {name: value}

    return parse


def _number(name: str, low: float, high: float | None) -> Callable[[str], Columns]:
    def parse(value: str) -> Columns:
        try:
            number = float(value.replace(",", ""))
        except ValueError:
            raise FieldProblem(f"not a number: {_shown(value)}") from None
        if not math.isfinite(number) or number < low or (high is not None and number > high):
            span = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise FieldProblem(f"must be {span}, got {_shown(value)}")
        return {name: number}

    return parse


def _account_id(value: str) -> Columns:
    digits = value.replace(" ", "")
    if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 30):
        raise FieldProblem(f"must be 6 to 30 digits (got {len(value)} characters)")
    return {"account_id": digits}


def _phone(value: str) -> Columns:
    if len(value) > 40:
        raise FieldProblem("longer than 40 characters")
    try:
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise FieldProblem(f"not a phone number: {mask_phone(value)!r}") from None
    if not phonenumbers.is_valid_number(number):
        raise FieldProblem(f"not a valid phone number: {mask_phone(value)!r}")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return {"phone": value, "phone_e164": e164}


def _scenario(value: str) -> Columns:
    try:
        return {"scenario": Scenario(value.lower()).value}
    except ValueError:
        allowed = ", ".join(s.value for s in Scenario)
        raise FieldProblem(f"must be one of {allowed}, got {_shown(value)}") from None


def _card_last4(value: str) -> Columns:
    if not (len(value) == 4 and value.isascii() and value.isdigit()):
        raise FieldProblem(f"must be 4 digits, got {_shown(value)}")
    return {"card_last4": value}


def _card_number(value: str) -> Columns:
    digits = re.sub(r"[ \-]", "", value)
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19):
        raise FieldProblem(f"must be 12 to 19 digits, got {mask_card(value)!r}")
    return {"card_last4": digits[-4:]}


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_SHAPE = re.compile(r"[1-9]\d{16}[\dX]")


def id_check_char(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character of a resident ID's 17 digits."""
    return _ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _id_number(value: str) -> Columns:
    compact = value.replace(" ", "").upper()
    if not (compact.isascii() and _ID_SHAPE.fullmatch(compact)):
        raise FieldProblem(
            f"must be 18 characters, 17 digits then a digit or X: {mask_id(value)!r}"
        )
    if id_check_char(compact[:17]) != compact[17]:
        raise FieldProblem(f"check character does not match: {mask_id(compact)!r}")
    return {"id_number": compact}


_GENDERS = {"m": "M", "f": "F", "男": "M", "女": "F"}


def _gender(value: str) -> Columns:
    found = _GENDERS.get(value.lower())
    if found is None:
        raise FieldProblem(f"must be M or F, got {_shown(value)}")
    return {"gender": found}


def _timezone(value: str) -> Columns:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldProblem(f"not an IANA time zone: {_shown(value)}") from None
    if len(value) > 40:
        raise FieldProblem("longer than 40 characters")
    return {"timezone": value}


def _txn_date(value: str) -> Columns:
    try:
        return {"txn_date": dt.date.fromisoformat(value)}
    except ValueError:
        raise FieldProblem(f"must be a date YYYY-MM-DD, got {_shown(value)}") from None


@dataclass(frozen=True)
class FieldSpec:
    """How one input field becomes ``account`` columns; ``when_empty`` is what an empty
    value sets (columns cleared, or a default); ``spoken``: the bot says it aloud, so
    it holds printable characters only (:mod:`bot.campaign.textcheck`)."""

    parse: Callable[[str], Columns]
    when_empty: Columns
    required: bool = False
    spoken: bool = False


def _required(parse: Callable[[str], Columns], *, spoken: bool = False) -> FieldSpec:
    return FieldSpec(parse, {}, required=True, spoken=spoken)


def _optional(parse: Callable[[str], Columns], *columns: str, spoken: bool = False) -> FieldSpec:
    return FieldSpec(parse, dict.fromkeys(columns), spoken=spoken)


#: The input fields, in the order their problems are reported.
FIELDS: dict[str, FieldSpec] = {
    "account_id": _required(_account_id),
    "name": _required(_bounded("name", 100), spoken=True),
    "phone": _required(_phone),
    "scenario": _required(_scenario),
    "model_score": _required(_number("model_score", 0.0, 1.0)),
    "card_last4": _optional(_card_last4, "card_last4"),
    "card_number": _optional(_card_number, "card_last4"),
    "id_number": _optional(_id_number, "id_number"),
    "branch": _optional(_bounded("branch", 60), "branch", spoken=True),
    "gender": _optional(_gender, "gender"),
    "timezone": FieldSpec(_timezone, {"timezone": DEFAULT_TIMEZONE}),
    "txn_amount": _optional(_number("txn_amount", 0.0, None), "txn_amount"),
    "txn_date": _optional(_txn_date, "txn_date"),
    "txn_counterparty": _optional(
        _bounded("txn_counterparty", 100), "txn_counterparty", spoken=True
    ),
}
REQUIRED = tuple(name for name, spec in FIELDS.items() if spec.required)


class _Collector:
    """Columns gathered from a record's fields; two fields that set the same column to
    different values (``card_last4`` against ``card_number``) are a problem."""

    def __init__(self) -> None:
        self.values: Columns = {}
        self.origin: dict[str, str] = {}

    def merge(self, source: str, columns: Columns) -> None:
        for column, value in columns.items():
            known = self.values.get(column)
            if value is None:
                self.values.setdefault(column, None)
            elif known is None:
                self.values[column], self.origin[column] = value, source
            elif known != value:
                raise FieldProblem(f"disagrees with {self.origin[column]}")


#: Deepest nesting of lists and objects a JSON ``extra`` value may have.
EXTRA_DEPTH = 20


def _check_extra(value: Any) -> None:
    """Every string in a free-text value, JSON keys and nested values included; without
    recursion, and with the nesting bounded (storing it serialises it again)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_characters(item, spoken=False)
        elif isinstance(item, dict | list):
            if depth == EXTRA_DEPTH:
                raise FieldProblem(f"nested deeper than {EXTRA_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _extra_value(value: Any) -> Any:
    _check_extra(value)
    return value.strip() if isinstance(value, str) else value


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def validate_record(raw: RawRecord) -> AccountRecord | RejectedRecord:
    """The ``account`` columns of one record, or every problem found in it."""
    if raw.problem:  # not JSON, or CSV cells out of line with the header: fields unknown
        return _rejected(raw, [("record", raw.problem)])
    problems: list[tuple[str, str]] = []
    found = _Collector()
    extra: dict[str, Any] = {}
    for key, value in raw.data.items():
        spec = FIELDS.get(key)
        try:
            if spec is None:
                if key not in REJECTS_COLUMNS and not _is_blank(value):
                    extra[key] = _extra_value(value)
                continue
            text = _text_of(value)
            _check_characters(text, spec.spoken)
            if not text and spec.required:
                raise FieldProblem("is required")
            found.merge(key, spec.parse(text) if text else spec.when_empty)
        except FieldProblem as exc:
            problems.append((key, str(exc)))
    problems += [(name, "is required") for name in REQUIRED if name not in raw.data]
    if problems:
        return _rejected(raw, problems)
    return AccountRecord(raw.line, {**found.values, "extra": extra})


def _rejected(raw: RawRecord, problems: Iterable[tuple[str, str]]) -> RejectedRecord:
    errors = tuple(RowError(raw.line, f, mask_text(reason), raw.data) for f, reason in problems)
    return RejectedRecord(raw.line, raw.data, errors)


def validate_source(source: Source) -> Iterator[AccountRecord | RejectedRecord]:
    """Every record of ``source`` validated, in file order. The first valid row of an
    account id wins; a later one is rejected with the line of the first."""
    first_line: dict[str, int] = {}
    for raw in source.records():
        outcome = validate_record(raw)
        if isinstance(outcome, AccountRecord):
            seen = first_line.setdefault(outcome.account_id, outcome.line)
            if seen != outcome.line:
                outcome = _rejected(
                    raw, [("account_id", f"duplicate of line {seen} (the first is kept)")]
                )
        yield outcome


# -- write ------------------------------------------------------------------------------


def ensure_campaign(engine: Engine, name: str) -> int:
    """The id of campaign ``name``, created as a ``draft`` with the model's defaults."""
    if not name.strip() or len(name) > 100:
        raise ImportFailed("the campaign name must be 1 to 100 characters")
    with session_scope(engine) as session:
        campaign = session.exec(select(CampaignRow).where(CampaignRow.name == name)).first()
        if campaign is None:
            campaign = CampaignRow(name=name)
            session.add(campaign)
            session.flush()
            log.info("created campaign %s", name)
        elif campaign.state == "cancelled":
            raise CampaignClosed(f"campaign '{name}' is cancelled; import into a new one")
        assert campaign.id is not None
        return campaign.id


@dataclass
class BatchCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    items_created: int = 0
    dnc: int = 0


def _apply(row: AccountRow, values: Columns, now: dt.datetime) -> bool:
    """Set ``values`` on a stored account; True if anything changed. ``extra`` keys are
    merged (keys absent from the file are kept, as are absent columns)."""
    changed = False
    for column, value in values.items():
        new = {**row.extra, **value} if column == "extra" else value
        if getattr(row, column) != new:
            setattr(row, column, new)
            changed = True
    if changed:
        row.updated_at = now
    return changed


#: What a new account gets for the columns its file does not give.
_ACCOUNT_DEFAULTS: Columns = {
    **{c: None for spec in FIELDS.values() if not spec.required for c in spec.when_empty},
    "timezone": DEFAULT_TIMEZONE,
    "extra": {},
}


def _upsert_accounts(
    session: Session, records: Sequence[AccountRecord], now: dt.datetime, counts: BatchCounts
) -> dict[str, int]:
    """Insert new accounts and update changed ones; returns the primary key of each.

    New rows go in as one bulk INSERT of plain dictionaries (building ORM objects costs
    more than the database work); stored rows are loaded and changed through the ORM."""
    ids = [r.account_id for r in records]
    stored = {
        row.account_id: row
        for row in session.exec(select(AccountRow).where(col(AccountRow.account_id).in_(ids)))
    }
    new: list[Columns] = []
    for record in records:
        row = stored.get(record.account_id)
        if row is None:
            new.append({**_ACCOUNT_DEFAULTS, **record.values, "created_at": now, "updated_at": now})
        elif _apply(row, record.values, now):
            session.add(row)
            counts.updated += 1
        else:
            counts.unchanged += 1
    pks = {aid: row.id for aid, row in stored.items() if row.id is not None}
    if new:
        session.execute(sa.insert(AccountRow), new)
        counts.inserted += len(new)
        query = select(AccountRow.account_id, AccountRow.id).where(
            col(AccountRow.account_id).in_([v["account_id"] for v in new])
        )
        pks.update({aid: pk for aid, pk in session.exec(query) if pk is not None})
    return pks


def _dnc_numbers(session: Session, phones: set[str]) -> set[str]:
    query = select(DncEntryRow.phone_e164).where(col(DncEntryRow.phone_e164).in_(phones))
    return set(session.exec(query).all())


def _item_state(on_dnc: bool) -> Columns:
    if on_dnc:
        return {"state": "cancelled", "last_outcome": DNC_OUTCOME}
    return {"state": "queued", "last_outcome": None}


def _resync(item: CampaignAccountRow, on_dnc: bool, now: dt.datetime) -> bool:
    """Bring a not-yet-dialled item in line with the DNC list (a number added to the
    list, or a corrected phone number); items in progress, done or cancelled for another
    reason are left alone."""
    waiting = item.state == "queued"
    dnc_cancelled = item.state == "cancelled" and item.last_outcome == DNC_OUTCOME
    if not (waiting or dnc_cancelled) or dnc_cancelled == on_dnc:
        return False
    for column, value in _item_state(on_dnc).items():
        setattr(item, column, value)
    item.updated_at = now
    if not on_dnc:
        item.next_attempt_at = now
    return True


def _ensure_items(
    session: Session,
    campaign_id: int,
    records: Sequence[AccountRecord],
    pks: dict[str, int],
    now: dt.datetime,
    counts: BatchCounts,
) -> None:
    """One work item per account in the campaign: created if missing (cancelled when
    the number is on the DNC list), else only re-synchronised with the DNC list."""
    existing = {
        item.account_pk: item
        for item in session.exec(
            select(CampaignAccountRow).where(
                CampaignAccountRow.campaign_id == campaign_id,
                col(CampaignAccountRow.account_pk).in_(pks.values()),
            )
        )
    }
    dnc = _dnc_numbers(session, {r.phone_e164 for r in records})
    new: list[Columns] = []
    for record in records:
        pk = pks[record.account_id]
        on_dnc = record.phone_e164 in dnc
        counts.dnc += on_dnc
        item = existing.get(pk)
        if item is None:
            new.append(
                {
                    "campaign_id": campaign_id,
                    "account_pk": pk,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "updated_at": now,
                    **_item_state(on_dnc),
                }
            )
        elif _resync(item, on_dnc, now):
            session.add(item)
    if new:
        session.execute(sa.insert(CampaignAccountRow), new)
        counts.items_created += len(new)


#: Times a batch is written again after losing a race to another import.
BATCH_RETRIES = 3


def _lost_race(exc: sa.exc.DBAPIError) -> bool:
    """Another import wrote the same account or work item between this batch's read
    and its insert: a unique violation (PostgreSQL waits for the other transaction,
    then refuses), or SQLite refusing to upgrade a stale read snapshot to a write."""
    if isinstance(exc, sa.exc.IntegrityError):
        return "unique" in str(exc.orig).lower() or "duplicate" in str(exc.orig).lower()
    return isinstance(exc, sa.exc.OperationalError) and "locked" in str(exc.orig).lower()


def write_batch(engine: Engine, campaign_id: int, records: Sequence[AccountRecord]) -> BatchCounts:
    """Upsert one batch of valid records and their work items in one transaction.

    Two imports of overlapping files may run at once: the batch that loses the race
    for a new account is rolled back and written again, when the other import's rows
    are visible and become updates (or nothing to do)."""
    if not records:
        return BatchCounts()
    for attempt in range(1, BATCH_RETRIES + 1):
        counts = BatchCounts()
        now = utcnow()
        try:
            with session_scope(engine) as session:
                pks = _upsert_accounts(session, records, now, counts)
                _ensure_items(session, campaign_id, records, pks, now, counts)
            return counts
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            if attempt == BATCH_RETRIES or not _lost_race(exc):
                raise
            log.info("batch raced another import (attempt %d): writing it again", attempt)
    raise AssertionError("unreachable")


def _add(report: ImportReport, counts: BatchCounts) -> None:
    report.inserted += counts.inserted
    report.updated += counts.updated
    report.unchanged += counts.unchanged
    report.items_created += counts.items_created
    report.dnc_skipped += counts.dnc


def import_file(
    engine: Engine,
    path: Path,
    campaign: str,
    *,
    fmt: str | None = None,
    encoding: str | None = None,
    rejects: Path | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Validate ``path`` and load its good rows into ``campaign`` (created if missing).
    ``encoding`` overrides the detected one (:func:`bot.campaign.decoding.decode`).

    Batches commit one by one: if the import stops half way, running it again finishes
    the job (it is idempotent). ``progress(done, total)`` is called after each batch.
    Raises :class:`ImportFailed` when nothing could be imported at all.
    """
    started = time.perf_counter()
    source = open_source(path, fmt, encoding)
    total = source.count()
    campaign_id = ensure_campaign(engine, campaign)
    report = ImportReport(campaign, encoding=source.decoded.label)
    batch: list[AccountRecord] = []

    def flush() -> None:
        _add(report, write_batch(engine, campaign_id, batch))
        batch.clear()
        if progress:
            progress(report.read, total)

    for outcome in validate_source(source):
        report.read += 1
        if isinstance(outcome, AccountRecord):
            batch.append(outcome)
        else:
            report.rejected_records.append(outcome)
        if report.read % batch_size == 0:
            flush()
    flush()
    if rejects is not None:
        write_rejects(rejects, report.rejected_records)
    report.seconds = time.perf_counter() - started
    log.info(
        "import into %s (%s): %d read, %d loaded, %d rejected in %.2f s",
        campaign,
        report.encoding,
        report.read,
        report.loaded,
        report.rejected,
        report.seconds,
    )
    return report


# -- rejects ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def write_rejects(path: Path, rejected: Sequence[RejectedRecord]) -> None:
    """Rejected records as CSV: their own columns, then ``line`` and ``error`` (every
    problem, masked). UTF-8 with a BOM so that spreadsheet programs show Chinese text;
    it holds the rows as the bank gave them, so it is as sensitive as the input."""
    columns = dict.fromkeys(k for r in rejected for k in r.raw if k not in REJECTS_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, [*columns, *REJECTS_COLUMNS])
        writer.writeheader()
        for record in rejected:
            row = {k: _cell(v) for k, v in record.raw.items() if k in columns}
            error = "; ".join(f"{e.field}: {e.reason}" for e in record.errors)
            writer.writerow({**row, "line": record.line, "error": error})
