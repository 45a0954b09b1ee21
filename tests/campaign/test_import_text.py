"""What the importer does with the text of a file: strict decoding (one bad line is one
rejected record, never a whole file read in the wrong encoding), an encoding named by
the operator, cells over the ``csv`` field size limit, and characters refused in text the
bot speaks. Tests taking ``engine`` run on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.campaign.decoding import decode
from bot.campaign.importer import (
    AccountRecord,
    RejectedRecord,
    UnreadableFile,
    import_file,
    open_source,
    validate_source,
)
from bot.store.models import AccountRow
from tests.campaign.importing import (
    HEADER,
    account_id,
    csv_text,
    good,
    read_rejects,
    write_csv,
    write_jsonl,
)

#: Holders' names: common ones, a minority name with a middle dot, and 䶮 (CJK Ext. A,
#: four bytes in GB18030, not in GBK).
NAMES = ("王芳", "李娜", "欧阳娜娜", "阿依古丽·买买提", "刘䶮")


def name(i: int) -> str:
    return NAMES[i % len(NAMES)]


def mixed_file(path: Path, encodings: dict[int, str], n: int, default: str = "utf-8") -> Path:
    """``n`` good rows, each line in ``default`` except row ``i`` in ``encodings[i]``
    (row ``i`` is on line ``i + 2``)."""
    lines = csv_text([good(i, name=name(i)) for i in range(n)]).splitlines(keepends=True)
    data = lines[0].encode("ascii")
    for i, line in enumerate(lines[1:]):
        data += line.encode(encodings.get(i, default))
    path.write_bytes(data)
    return path


def outcomes(path: Path, **options: str) -> list[AccountRecord | RejectedRecord]:
    return list(validate_source(open_source(path, **options)))


def split(
    results: list[AccountRecord | RejectedRecord],
) -> tuple[list[AccountRecord], list[RejectedRecord]]:
    good_ones = [r for r in results if isinstance(r, AccountRecord)]
    return good_ones, [r for r in results if isinstance(r, RejectedRecord)]


def stored_names(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        return dict(s.exec(select(AccountRow.account_id, AccountRow.name)).all())


# -- encodings --------------------------------------------------------------------------


def test_one_gbk_line_in_a_utf8_file_is_rejected_alone(engine: Engine, tmp_path: Path) -> None:
    """The probe's file: 1,000 UTF-8 rows, one of them saved in GBK. Before, the whole
    file was read as GB18030 (999 garbled names, 0 rejects)."""
    path = mixed_file(tmp_path / "a.csv", {500: "gbk"}, 1000)
    report = import_file(engine, path, "c", rejects=tmp_path / "rejects.csv")
    assert (report.read, report.loaded, report.rejected) == (1000, 999, 1)
    assert report.encoding == "UTF-8 (detected)"
    (error,) = report.errors
    assert (error.line, error.field) == (502, "record")
    assert error.reason.startswith("line 502 is not valid UTF-8 (byte 0x")
    assert "GB18030" in error.reason
    names = stored_names(engine)
    assert len(names) == 999 and account_id(500) not in names
    assert all(names[account_id(i)] == name(i) for i in range(1000) if i != 500)
    (row,) = read_rejects(tmp_path / "rejects.csv")
    assert (row["line"], row["account_id"]) == ("502", account_id(500))


def test_a_few_gbk_lines_among_more_utf8_lines_stay_utf8(tmp_path: Path) -> None:
    path = mixed_file(tmp_path / "a.csv", {1: "gbk", 4: "gb18030", 7: "gbk"}, 10)
    loaded, rejected = split(outcomes(path))
    assert [r.line for r in rejected] == [3, 6, 9]
    assert [r.values["name"] for r in loaded] == [name(i) for i in (0, 2, 3, 5, 6, 8, 9)]


def test_a_pure_gb18030_file_still_loads(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv", [good(i, name=name(i)) for i in range(20)], encoding="gb18030"
    )
    report = import_file(engine, path, "c")
    assert (report.loaded, report.rejected) == (20, 0)
    assert report.encoding == "GB18030 (detected)"
    assert stored_names(engine) == {account_id(i): name(i) for i in range(20)}


def test_a_utf8_line_in_a_gb18030_file_is_rejected_not_garbled(tmp_path: Path) -> None:
    """UTF-8 bytes decode as GB18030 (as mojibake): a detected GB18030 file refuses a
    line that is valid UTF-8."""
    path = mixed_file(tmp_path / "a.csv", {4: "utf-8"}, 10, default="gb18030")
    utf8_line = path.read_bytes().splitlines()[5]
    assert "鍒樹懂" in utf8_line.decode("gb18030")  # 刘䶮, garbled without an error
    loaded, rejected = split(outcomes(path))
    assert len(loaded) == 9 and all(r.values["name"] in NAMES for r in loaded)
    (record,) = rejected
    assert record.line == 6
    assert "line 6 is UTF-8 text, the rest of the file is GB18030" in record.errors[0].reason


def test_a_utf8_bom_file_with_a_bad_line_stays_utf8(tmp_path: Path) -> None:
    path = mixed_file(tmp_path / "a.csv", {0: "gbk", 1: "gbk", 2: "gbk"}, 4)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    loaded, rejected = split(outcomes(path))
    assert [r.line for r in rejected] == [2, 3, 4]
    assert [r.values["name"] for r in loaded] == [name(3)]
    assert decode(path.read_bytes()).label == "UTF-8 (byte-order mark)"


def test_a_bad_line_inside_a_multi_line_record_rejects_that_record(tmp_path: Path) -> None:
    rows = [good(0), good(1, note="第一行\n第二行"), good(2)]
    text = csv_text(rows, [*HEADER, "note"])
    path = tmp_path / "a.csv"
    path.write_bytes(text.encode().replace("第二行".encode(), "第二行".encode("gbk")))
    results = outcomes(path)
    assert [r.line for r in results] == [2, 3, 5]
    (record,) = split(results)[1]
    assert record.line == 3 and "line 4 is not valid UTF-8" in record.errors[0].reason


def test_jsonl_lines_are_decoded_one_by_one(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [good(i, name=name(i)) for i in range(4)])
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_bytes(b"".join(s.encode("gbk" if i == 2 else "utf-8") for i, s in enumerate(lines)))
    loaded, rejected = split(outcomes(path))
    assert [r.line for r in rejected] == [3]
    assert "line 3 is not valid UTF-8" in rejected[0].errors[0].reason
    assert [r.values["name"] for r in loaded] == [name(0), name(1), name(3)]


def test_an_undecodable_header_makes_the_file_unreadable(tmp_path: Path) -> None:
    header, rows = csv_text([good(0), good(1)], [*HEADER, "备注"]).split("\n", 1)
    path = tmp_path / "a.csv"
    path.write_bytes(f"{header}\n".encode("gbk") + rows.encode())
    with pytest.raises(UnreadableFile, match="header does not decode: line 1"):
        open_source(path)


# -- --encoding -------------------------------------------------------------------------


def test_encoding_option_overrides_detection(engine: Engine, tmp_path: Path) -> None:
    """A Big5 file (Hong Kong, Taiwan) decodes as GB18030 without a single error, into
    the wrong characters: detection cannot tell, the operator can."""
    names = ["陳大文", "黃美玲", "張志明"]
    path = write_csv(
        tmp_path / "a.csv",
        [good(i, name=n, branch="香港分行", txn_counterparty="李四") for i, n in enumerate(names)],
        encoding="big5",
    )
    guessed, _ = split(outcomes(path))
    assert [r.values["name"] for r in guessed] != names  # what the option is for
    report = import_file(engine, path, "c", encoding="big5")
    assert (report.loaded, report.rejected, report.encoding) == (3, 0, "BIG5 (given)")
    assert list(stored_names(engine).values()) == names


def test_encoding_option_decodes_strictly(tmp_path: Path) -> None:
    """``utf-8`` named on a GB18030 file: every line with Chinese text is rejected with
    its number, nothing falls back to another encoding."""
    path = write_csv(tmp_path / "a.csv", [good(0), good(1)], encoding="gb18030")
    loaded, rejected = split(outcomes(path, encoding="UTF8"))
    assert loaded == [] and [r.line for r in rejected] == [2, 3]
    assert all("is not valid UTF-8" in r.errors[0].reason for r in rejected)
    loaded, _ = split(outcomes(path, encoding="gbk"))
    assert [r.values["name"] for r in loaded] == ["张三", "张三"]


@pytest.mark.parametrize(
    ("encoding", "data", "message"),
    [
        ("klingon", b"", "unknown encoding 'klingon'"),
        ("utf-16", b"", "not ASCII-compatible"),
        ("gb18030", b"\xef\xbb\xbf", "UTF-8 byte-order mark"),
        (None, b"\xff\xfe", "is UTF-16 text"),
        (None, b"\xff\xfe\x00\x00", "is UTF-32 text"),
    ],
)
def test_encodings_that_cannot_be_used_are_refused(
    tmp_path: Path, encoding: str | None, data: bytes, message: str
) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(data + csv_text([good(0)]).encode())
    with pytest.raises(UnreadableFile, match=message):
        open_source(path, encoding=encoding)


# -- cells over the csv field size limit --------------------------------------------------


def test_an_oversized_cell_rejects_only_its_row(engine: Engine, tmp_path: Path) -> None:
    limit = csv.field_size_limit()
    rows = [good(0), good(1, note="x" * (limit + 1)), good(2), good(3)]
    path = write_csv(tmp_path / "a.csv", rows, [*HEADER, "note"])
    report = import_file(engine, path, "c", rejects=tmp_path / "rejects.csv")
    assert (report.read, report.loaded, report.rejected) == (4, 3, 1)
    (error,) = report.errors
    assert (error.line, error.field) == (3, "record")
    assert f"a cell is longer than {limit:,} characters" in error.reason
    assert sorted(stored_names(engine)) == [account_id(i) for i in (0, 2, 3)]
    (row,) = read_rejects(tmp_path / "rejects.csv")
    assert row["line"] == "3" and row["_text"].startswith(account_id(1))
    assert len(row["_text"]) == 1_000


def test_an_oversized_quoted_cell_over_many_lines_is_skipped_whole(tmp_path: Path) -> None:
    """The limit trips in the middle of a quoted field whose lines look like records:
    none of them is loaded, and the records after the field keep their line numbers."""
    limit = csv.field_size_limit()
    inner_row = csv_text([good(99)]).splitlines()[1]
    copies = limit // len(inner_row) + 10
    note = "\n".join([inner_row] * copies)
    path = write_csv(tmp_path / "a.csv", [good(0), good(1, note=note), good(2)], [*HEADER, "note"])
    results = outcomes(path)
    assert [r.line for r in results] == [2, 3, 3 + copies]
    loaded, (record,) = split(results)
    assert [r.values["account_id"] for r in loaded] == [account_id(0), account_id(2)]
    assert record.errors[0].reason.endswith(f"(lines 3-{2 + copies})")


def test_a_quote_never_closed_is_one_rejected_record_to_the_end(tmp_path: Path) -> None:
    limit = csv.field_size_limit()
    rows = [good(i) for i in range(limit // 50)]  # over 50 characters a row
    text = csv_text(rows).replace(f"{account_id(2)},", f'{account_id(2)},"', 1)
    path = tmp_path / "a.csv"
    path.write_text(text)
    loaded, rejected = split(outcomes(path))
    assert len(loaded) == 2
    (record,) = rejected
    assert record.line == 4 and "a quote opened here is never closed" in record.errors[0].reason


# -- characters refused in spoken text ----------------------------------------------------

REFUSED_IN_SPOKEN = [
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # embeddings and overrides
    "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c",  # isolates, marks
    "\t", "\n", "\x07", "\x1b", "\x7f", "\x85", "\x9b",  # C0, DEL, C1 (NEL, CSI)
    "\u200b", "\u200d", "\ufeff", "\u00ad", "\u2028",  # invisible, line separator
    "\ufffd",  # already mojibake
]  # fmt: skip


@pytest.mark.parametrize("char", REFUSED_IN_SPOKEN, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field", ["name", "branch", "txn_counterparty"])
def test_spoken_fields_refuse_control_and_invisible_characters(
    tmp_path: Path, field: str, char: str
) -> None:
    path = write_csv(tmp_path / "a.csv", [good(0), good(1, **{field: f"王{char}芳"})])
    loaded, (record,) = split(outcomes(path))
    assert len(loaded) == 1
    (error,) = record.errors
    assert (error.line, error.field) == (3, field)
    assert error.reason.startswith(f"contains U+{ord(char):04X}")
    assert error.reason.endswith("at character 2: not allowed in text the bot speaks")


def test_a_bidi_override_name_is_refused_with_a_clear_reason(
    engine: Engine, tmp_path: Path
) -> None:
    """ "王\u202e芳" shows as 王芳 reversed in a reviewer's table and would be spoken."""
    path = write_csv(tmp_path / "a.csv", [good(0), good(1, name="王\u202e芳"), good(2)])
    report = import_file(engine, path, "c")
    assert (report.loaded, report.rejected) == (2, 1)
    (error,) = report.errors
    assert (error.line, error.field) == (3, "name")
    assert error.reason == (
        "contains U+202E RIGHT-TO-LEFT OVERRIDE (a bidirectional-text control) at "
        "character 2: not allowed in text the bot speaks"
    )
    assert account_id(1) not in stored_names(engine)


def test_printable_names_of_every_kind_are_kept(tmp_path: Path) -> None:
    kept = [*NAMES, "Ma Li", "王\u3000芳", "Zoë"]
    path = write_csv(tmp_path / "a.csv", [good(i, name=n) for i, n in enumerate(kept)])
    loaded, rejected = split(outcomes(path))
    assert rejected == [] and [r.values["name"] for r in loaded] == kept


def test_free_text_columns_allow_tabs_and_line_breaks_only(tmp_path: Path) -> None:
    notes = ["第一行\n第二行\t备注", "a\x1bb", "夜间\u202e转入", "ok"]
    header = [*HEADER, "note"]
    path = write_csv(tmp_path / "a.csv", [good(i, note=n) for i, n in enumerate(notes)], header)
    loaded, rejected = split(outcomes(path))
    assert [r.values["extra"]["note"] for r in loaded] == [notes[0], notes[3]]
    reasons = [(r.errors[0].field, r.errors[0].reason) for r in rejected]
    assert reasons == [
        ("note", "contains U+001B (a control character) at character 2"),
        (
            "note",
            "contains U+202E RIGHT-TO-LEFT OVERRIDE (a bidirectional-text control) at character 3",
        ),
    ]


def test_json_lone_surrogates_are_refused_and_the_rest_load(engine: Engine, tmp_path: Path) -> None:
    """``"\\ud800"`` is valid JSON but not storable text (PostgreSQL refuses it)."""
    objects = [{**good(1), "name": "\ud800"}, {**good(2), "tags": {"k": ["\udfff"]}}, good(3)]
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in objects))  # ASCII, \u escapes
    report = import_file(engine, path, "c")
    assert (report.loaded, report.rejected) == (1, 2)
    assert [(e.line, e.field) for e in report.errors] == [(1, "name"), (2, "tags")]
    assert all("a lone surrogate" in e.reason for e in report.errors)
    with Session(engine) as s:
        assert s.exec(select(sa.func.count()).select_from(AccountRow)).one() == 1


def test_deeply_nested_json_is_a_rejected_record(tmp_path: Path) -> None:
    """Nesting the JSON parser gives up on, or deeper than an ``extra`` value may be,
    rejects the line instead of stopping the import."""
    row = json.dumps(good(1))[:-1]
    path = tmp_path / "a.jsonl"
    lines = [
        json.dumps(good(0)),
        "[" * 100_000 + "]" * 100_000,
        row + ', "tags": ' + "[" * 21 + "]" * 21 + "}",
        row + ', "tags": ' + "[" * 20 + "]" * 20 + "}",
    ]
    path.write_text("\n".join(lines) + "\n")
    loaded, rejected = split(outcomes(path))
    assert [r.line for r in loaded] == [1, 4]
    reasons = [(r.line, r.errors[0].field, r.errors[0].reason) for r in rejected]
    assert reasons == [
        (2, "record", "nested too deeply"),
        (3, "tags", "nested deeper than 20 levels"),
    ]
