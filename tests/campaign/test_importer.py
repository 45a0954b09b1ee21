"""The account importer: validation with line numbers, and idempotent loading on both
databases (every test taking ``engine`` runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.campaign.importer import (
    AccountRecord,
    CampaignClosed,
    RejectedRecord,
    UnreadableFile,
    id_check_char,
    import_file,
    open_source,
    validate_source,
)
from bot.store.db import session_scope
from bot.store.models import AccountRow, CampaignAccountRow, CampaignRow, DncEntryRow
from tests.campaign.importing import (
    HEADER,
    VALID_IDS,
    account_id,
    csv_text,
    good,
    phone,
    read_rejects,
    write_csv,
    write_jsonl,
)


def parse(path: Path, fmt: str | None = None) -> list[AccountRecord | RejectedRecord]:
    return list(validate_source(open_source(path, fmt)))


def rejected(path: Path, fmt: str | None = None) -> list[RejectedRecord]:
    return [r for r in parse(path, fmt) if isinstance(r, RejectedRecord)]


def only_error(path: Path) -> tuple[int, str, str]:
    (record,) = rejected(path)
    (error,) = record.errors
    return error.line, error.field, error.reason


def count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return int(s.exec(select(sa.func.count()).select_from(model)).one())


def items(engine: Engine, campaign: str = "c") -> dict[str, CampaignAccountRow]:
    with Session(engine) as s:
        rows = s.exec(
            select(AccountRow.account_id, CampaignAccountRow)
            .join(CampaignAccountRow, col(CampaignAccountRow.account_pk) == AccountRow.id)
            .join(CampaignRow, col(CampaignRow.id) == CampaignAccountRow.campaign_id)
            .where(CampaignRow.name == campaign)
        ).all()
        return {aid: item for aid, item in rows}


def account(engine: Engine, aid: str) -> AccountRow:
    with Session(engine) as s:
        return s.exec(select(AccountRow).where(AccountRow.account_id == aid)).one()


# -- validation (no database) -----------------------------------------------------------


def test_resident_id_check_character_matches_known_ids() -> None:
    for known in VALID_IDS:
        assert id_check_char(known[:17]) == known[17]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("account_id", "12345", "6 to 30 digits"),
        ("account_id", "62220000abc", "6 to 30 digits"),
        ("account_id", "６２２２００００１２３", "6 to 30 digits"),  # full-width digits
        ("account_id", "", "is required"),
        ("name", "", "is required"),
        ("name", "张" * 101, "longer than 100"),
        ("phone", "", "is required"),
        ("phone", "12345678901", "not a valid phone number"),
        ("phone", "call me", "not a phone number"),
        ("scenario", "fraud", "must be one of new_account, dormant, suspicious_txn"),
        ("model_score", "1.5", "between 0 and 1"),
        ("model_score", "-0.1", "between 0 and 1"),
        ("model_score", "nan", "between 0 and 1"),
        ("model_score", "high", "not a number"),
        ("card_last4", "123", "4 digits"),
        ("id_number", "110105194912310021", "check character"),
        ("id_number", "1101051949", "18 characters"),
        ("branch", "x" * 61, "longer than 60"),
        ("gender", "X", "M or F"),
        ("timezone", "Mars/Olympus", "IANA time zone"),
        ("txn_amount", "-5", "at least 0"),
        ("txn_date", "2026-13-01", "YYYY-MM-DD"),
        ("txn_counterparty", "李" * 101, "longer than 100"),
    ],
)
def test_each_rule_rejects_with_line_field_and_reason(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    path = write_csv(tmp_path / "a.csv", [good(0), good(1), good(2, **{field: value}), good(3)])
    line, bad_field, why = only_error(path)
    assert (line, bad_field) == (4, field)
    assert reason in why


def test_all_problems_of_a_row_are_reported_and_it_counts_once(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [good(0, phone="1", model_score="2", gender="?")])
    (record,) = rejected(path)
    assert [(e.line, e.field) for e in record.errors] == [
        (2, "phone"),
        (2, "model_score"),
        (2, "gender"),
    ]


def test_values_are_normalised(tmp_path: Path) -> None:
    row = good(
        7,
        account_id="6222 0000 0000 0007",
        phone="+86 138-0000-0007",
        scenario="Suspicious_Txn",
        gender="女",
        id_number=VALID_IDS[0].lower(),
        timezone="Asia/Urumqi",
        txn_amount="1,234.5",
    )
    (record,) = parse(write_csv(tmp_path / "a.csv", [row]))
    assert isinstance(record, AccountRecord)
    v = record.values
    assert v["account_id"] == "6222000000000007"
    assert (v["phone"], v["phone_e164"]) == ("+86 138-0000-0007", "+8613800000007")
    assert (v["scenario"], v["gender"], v["timezone"]) == ("suspicious_txn", "F", "Asia/Urumqi")
    assert v["id_number"] == VALID_IDS[0]
    assert v["txn_amount"] == 1234.5
    assert v["txn_date"] == dt.date(2026, 11, 18)


def test_empty_timezone_is_the_default_and_empty_optionals_are_null(tmp_path: Path) -> None:
    (record,) = parse(write_csv(tmp_path / "a.csv", [good(0, branch="", txn_date="")]))
    assert isinstance(record, AccountRecord)
    assert record.values["timezone"] == "Asia/Shanghai"
    assert record.values["branch"] is None
    assert record.values["txn_date"] is None


def test_foreign_numbers_are_accepted_in_e164(tmp_path: Path) -> None:
    (record,) = parse(write_csv(tmp_path / "a.csv", [good(0, phone="+1 650 253 0000")]))
    assert isinstance(record, AccountRecord)
    assert record.values["phone_e164"] == "+16502530000"


def test_card_number_keeps_only_the_last_four_digits(tmp_path: Path) -> None:
    header = [*HEADER, "card_number"]
    row = good(0, card_last4="", card_number="6225 8801 2345 6789")
    (record,) = parse(write_csv(tmp_path / "a.csv", [row], header))
    assert isinstance(record, AccountRecord)
    assert record.values["card_last4"] == "6789"
    assert "6225880123456789" not in json.dumps(record.values, default=str).replace(" ", "")


def test_card_last4_disagreeing_with_card_number_is_rejected(tmp_path: Path) -> None:
    header = [*HEADER, "card_number"]
    row = good(0, card_last4="1111", card_number="6225880123456789")
    line, field, reason = only_error(write_csv(tmp_path / "a.csv", [row], header))
    assert (line, field) == (2, "card_number")
    assert "disagrees with card_last4" in reason
    assert "6225880123456789" not in reason


def test_unknown_columns_go_to_extra_and_rejects_columns_are_ignored(tmp_path: Path) -> None:
    header = [*HEADER, "Risk_Reason", "empty_one", "line", "error"]
    row = good(0, Risk_Reason="夜间大额转入", empty_one="", line="9", error="old")
    (record,) = parse(write_csv(tmp_path / "a.csv", [row], header))
    assert isinstance(record, AccountRecord)
    assert record.values["extra"] == {"risk_reason": "夜间大额转入"}


def test_reasons_never_show_unmasked_numbers(tmp_path: Path) -> None:
    header = [*HEADER, "card_number"]
    rows = [
        good(0, phone="12345678901"),
        good(1, id_number="110105194912310021"),
        good(2, card_number="6225-8801-23"),
        good(3, account_id="13912345678x", scenario="13912345678"),
    ]
    errors = [e for r in rejected(write_csv(tmp_path / "a.csv", rows, header)) for e in r.errors]
    text = " ".join(e.reason for e in errors) + " ".join(repr(e) for e in errors)
    assert len(errors) == 5
    for secret in ("12345678901", "110105194912310021", "62258801", "13912345678"):
        assert secret not in text
    assert "123****8901" in text  # masked, yet still tells the reader which number


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    """Blank lines and quoted fields over several lines (a free-text column may hold
    line breaks): the error names the line where the record starts."""
    text = csv_text(
        [
            good(0, note="第一行\n第二行"),  # lines 2-3
            good(1),  # line 4
            good(2, note="a\r\nb\nc", phone="1"),  # lines 5-7, bad
            good(3, gender="?"),  # line 9 after a blank line
        ],
        [*HEADER, "note"],
    )
    lines = text.split("\n")
    text = "\n".join([*lines[:7], "", *lines[7:]])
    path = tmp_path / "a.csv"
    path.write_bytes(text.encode())
    outcomes = parse(path)
    assert [o.line for o in outcomes] == [2, 4, 5, 9]
    assert [o.line for o in outcomes if isinstance(o, RejectedRecord)] == [5, 9]
    first = outcomes[0]
    assert isinstance(first, AccountRecord) and first.values["extra"] == {"note": "第一行\n第二行"}


def test_bom_and_crlf_are_understood(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text([good(0), good(1)]).replace("\n", "\r\n").encode())
    outcomes = parse(path)
    assert all(isinstance(o, AccountRecord) for o in outcomes) and len(outcomes) == 2
    assert isinstance(outcomes[0], AccountRecord) and outcomes[0].values["name"] == "张三"


def test_gb18030_files_are_decoded(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [good(0, name="欧阳娜娜")], encoding="gb18030")
    (record,) = parse(path)
    assert isinstance(record, AccountRecord) and record.values["name"] == "欧阳娜娜"


def test_wrong_number_of_fields_is_a_record_error(tmp_path: Path) -> None:
    text = csv_text([good(0)]) + account_id(1) + ",王五,13800000001,dormant,0.5\n"
    text += csv_text([good(2, name="王,五")]).split("\n", 1)[1].replace('"王,五"', "王,五")
    path = tmp_path / "a.csv"
    path.write_text(text)
    errors = [e for r in rejected(path) for e in r.errors]
    assert [(e.line, e.field) for e in errors] == [(3, "record"), (4, "record")]
    assert "has 5 fields, the header has 13" in errors[0].reason
    assert "has 14 fields" in errors[1].reason


def test_duplicate_account_keeps_the_first_and_names_its_line(tmp_path: Path) -> None:
    rows = [good(0, name="first"), good(1), good(0, name="second"), good(2, phone="x"), good(2)]
    outcomes = parse(write_csv(tmp_path / "a.csv", rows))
    loaded = [o for o in outcomes if isinstance(o, AccountRecord)]
    assert [o.values["name"] for o in loaded] == ["first", "张三", "张三"]
    errors = [e for o in outcomes if isinstance(o, RejectedRecord) for e in o.errors]
    assert [(e.line, e.field) for e in errors] == [(4, "account_id"), (5, "phone")]
    assert "duplicate of line 2" in errors[0].reason


def test_header_without_a_required_column_is_unreadable(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "phone"]
    path = write_csv(
        tmp_path / "a.csv", [{k: v for k, v in good(0).items() if k != "phone"}], header
    )
    with pytest.raises(UnreadableFile, match=r"lacks required column.*phone"):
        open_source(path)


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [("a.xlsx", None, "pass --format"), ("a.csv", "xml", "unknown format")],
)
def test_unknown_formats_are_unreadable(
    tmp_path: Path, name: str, fmt: str | None, message: str
) -> None:
    path = tmp_path / name
    path.write_text("x")
    with pytest.raises(UnreadableFile, match=message):
        open_source(path, fmt)


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile):
        open_source(tmp_path / "nope.csv")


def test_jsonl_records_with_line_numbers(tmp_path: Path) -> None:
    nested = {
        "account_id": 6222000000000009,
        "name": "李娜",
        "phone": "+8613800000009",
        "scenario": "suspicious_txn",
        "model_score": 0.81,
        "txn": {"amount": 49800, "date": "2026-11-18", "counterparty": "王强"},
        "tags": ["night", "large"],
    }
    path = write_jsonl(
        tmp_path / "a.ndjson",
        [
            good(0),  # 1
            "",  # 2 blank
            "{not json",  # 3
            "[1, 2]",  # 4
            nested,  # 5
            {**good(1), "model_score": True},  # 6
            {k: v for k, v in good(2).items() if k != "scenario"},  # 7
        ],
    )
    outcomes = parse(path)
    assert [o.line for o in outcomes] == [1, 3, 4, 5, 6, 7]
    errors = {e.line: e for o in outcomes if isinstance(o, RejectedRecord) for e in o.errors}
    assert sorted(errors) == [3, 4, 6, 7]
    assert "not valid JSON" in errors[3].reason
    assert "not a JSON object" in errors[4].reason
    assert (errors[6].field, errors[6].reason) == (
        "model_score",
        "must be text or a number, not bool",
    )
    assert (errors[7].field, errors[7].reason) == ("scenario", "is required")
    record = outcomes[3]
    assert isinstance(record, AccountRecord)
    assert record.values["account_id"] == "6222000000000009"
    assert record.values["txn_counterparty"] == "王强"
    assert record.values["txn_amount"] == 49800.0
    assert record.values["extra"] == {"tags": ["night", "large"]}


def test_format_option_overrides_the_extension(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "accounts.txt", [good(0)])
    assert isinstance(parse(path, "jsonl")[0], AccountRecord)


# -- loading (SQLite and PostgreSQL) ----------------------------------------------------


def test_import_loads_accounts_and_queues_work(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [good(i) for i in range(5)] + [good(9, phone="1")])
    report = import_file(engine, path, "c")
    assert (report.read, report.loaded, report.inserted, report.rejected) == (6, 5, 5, 1)
    assert report.items_created == 5
    stored = account(engine, account_id(3))
    assert (stored.phone, stored.phone_e164) == (phone(3), f"+86{phone(3)}")
    assert (stored.timezone, stored.model_score, stored.id_number) == (
        "Asia/Shanghai",
        0.42,
        VALID_IDS[1],
    )
    assert stored.txn_date == dt.date(2026, 11, 18)
    with Session(engine) as s:
        campaign = s.exec(select(CampaignRow).where(CampaignRow.name == "c")).one()
    assert campaign.state == "draft" and campaign.max_attempts == 3
    assert {i.state for i in items(engine).values()} == {"queued"}
    assert len(items(engine)) == 5


def test_reimport_is_idempotent(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [good(i) for i in range(20)] + [good(99, gender="?")])
    first = import_file(engine, path, "c", batch_size=7)
    again = import_file(engine, path, "c", batch_size=7)
    assert (first.inserted, first.items_created, first.rejected) == (20, 20, 1)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 20)
    assert (again.items_created, again.rejected) == (0, 1)
    assert count(engine, AccountRow) == 20
    assert count(engine, CampaignAccountRow) == 20
    assert count(engine, CampaignRow) == 1


def test_reimport_updates_changed_fields_only(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, write_csv(tmp_path / "a.csv", [good(0), good(1)]), "c")
    before = account(engine, account_id(1))
    time.sleep(0.01)
    header = [h for h in HEADER if h != "id_number"]  # absent column: stored value kept
    rows = [
        {k: v for k, v in good(0).items() if k != "id_number"},
        {
            k: v
            for k, v in good(1, name="张三丰", model_score="0.9", branch="").items()
            if k != "id_number"
        },
    ]
    report = import_file(engine, write_csv(tmp_path / "b.csv", rows, header), "c")
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    after = account(engine, account_id(1))
    assert (after.name, after.model_score, after.branch) == ("张三丰", 0.9, None)
    assert after.id_number == VALID_IDS[1]
    assert after.updated_at > before.updated_at
    assert after.created_at == before.created_at
    assert account(engine, account_id(0)).updated_at == account(engine, account_id(0)).created_at


def test_extra_keys_merge_on_reimport(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, write_jsonl(tmp_path / "a.jsonl", [{**good(0), "a": 1}]), "c")
    import_file(engine, write_jsonl(tmp_path / "b.jsonl", [{**good(0), "b": 2}]), "c")
    assert account(engine, account_id(0)).extra == {"a": 1, "b": 2}


def test_reimport_leaves_started_and_finished_work_alone(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [good(i) for i in range(3)])
    import_file(engine, path, "c")
    states = {account_id(0): "done", account_id(1): "in_progress"}
    with session_scope(engine) as s:
        for aid, state in states.items():
            s.execute(
                sa.update(CampaignAccountRow)
                .where(col(CampaignAccountRow.id) == items(engine)[aid].id)
                .values(state=state, attempts=1)
            )
    report = import_file(engine, path, "c")
    assert report.items_created == 0
    after = items(engine)
    assert {aid: i.state for aid, i in after.items()} == {**states, account_id(2): "queued"}
    assert after[account_id(0)].attempts == 1


def test_same_accounts_in_two_campaigns(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [good(i) for i in range(4)])
    import_file(engine, path, "first")
    report = import_file(engine, path, "second")
    assert (report.unchanged, report.items_created) == (4, 4)
    assert count(engine, AccountRow) == 4
    assert len(items(engine, "first")) == len(items(engine, "second")) == 4


def test_do_not_call_numbers_load_but_are_never_queued(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as s:
        s.add(DncEntryRow(phone_e164=f"+86{phone(1)}", reason="customer request"))
    path = write_csv(tmp_path / "a.csv", [good(i) for i in range(3)])
    report = import_file(engine, path, "c")
    assert (report.loaded, report.items_created, report.dnc_skipped) == (3, 3, 1)
    dnc_item = items(engine)[account_id(1)]
    assert (dnc_item.state, dnc_item.last_outcome) == ("cancelled", "dnc")
    assert items(engine)[account_id(0)].state == "queued"


def test_reimport_follows_the_do_not_call_list(engine: Engine, tmp_path: Path) -> None:
    """A queued number that joined the list is cancelled; a corrected number off the list
    is queued again; an item cancelled with its campaign's queue is not revived."""
    path = write_csv(tmp_path / "a.csv", [good(i) for i in range(3)])
    import_file(engine, path, "c")
    with session_scope(engine) as s:
        s.add(DncEntryRow(phone_e164=f"+86{phone(0)}"))
        s.add(DncEntryRow(phone_e164=f"+86{phone(1)}"))
    import_file(engine, path, "c")
    assert items(engine)[account_id(0)].state == "cancelled"
    fixed = write_csv(tmp_path / "b.csv", [good(0, phone=phone(50)), good(1)])
    report = import_file(engine, fixed, "c")
    assert report.dnc_skipped == 1
    now = items(engine)
    assert (now[account_id(0)].state, now[account_id(0)].last_outcome) == ("queued", None)
    assert (now[account_id(1)].state, now[account_id(1)].last_outcome) == ("cancelled", "dnc")


def test_cancelled_campaign_refuses_imports(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as s:
        s.add(CampaignRow(name="c", state="cancelled"))
    with pytest.raises(CampaignClosed):
        import_file(engine, write_csv(tmp_path / "a.csv", [good(0)]), "c")
    assert count(engine, AccountRow) == 0


def test_unreadable_file_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [{"account_id": "1"}], ["account_id"])
    with pytest.raises(UnreadableFile):
        import_file(engine, path, "c")
    assert count(engine, CampaignRow) == 0


BAD_KINDS = [
    ("phone", "1234"),
    ("model_score", "1.7"),
    ("scenario", "loan"),
    ("account_id", "12ab"),
    ("id_number", "110105194912310021"),
    ("txn_date", "18/11/2026"),
    ("name", ""),
]


def test_ten_thousand_good_and_a_thousand_bad(engine: Engine, tmp_path: Path) -> None:
    rows, bad_lines = [], {}
    for i in range(11_000):
        line = len(rows) + 2
        if i % 11 == 5:
            field, value = BAD_KINDS[len(bad_lines) % len(BAD_KINDS)]
            bad_lines[line] = field
            rows.append(good(i, **{field: value}))
        else:
            rows.append(good(i))
    path = write_csv(tmp_path / "big.csv", rows)
    progress: list[tuple[int, int]] = []
    start = time.perf_counter()
    report = import_file(engine, path, "big", progress=lambda d, t: progress.append((d, t)))
    seconds = time.perf_counter() - start
    assert (report.read, report.loaded, report.rejected) == (11_000, 10_000, 1_000)
    assert {e.line: e.field for e in report.errors} == bad_lines
    assert len(report.errors) == 1_000
    assert count(engine, AccountRow) == 10_000
    assert len(items(engine, "big")) == 10_000
    assert progress[-1] == (11_000, 11_000)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    print(f"\n{engine.dialect.name}: 11,000 rows imported in {seconds:.2f} s")
    again = time.perf_counter()
    assert import_file(engine, path, "big").unchanged == 10_000
    print(f"{engine.dialect.name}: re-import in {time.perf_counter() - again:.2f} s")


def test_rejects_file_lists_rows_as_given_with_line_and_error(
    engine: Engine, tmp_path: Path
) -> None:
    header = [*HEADER, "note"]
    rows = [
        good(0),
        good(1, phone="12345678901", gender="Q", note="x"),
        good(2),
        good(3, scenario=""),
    ]
    out = tmp_path / "out" / "rejects.csv"
    import_file(engine, write_csv(tmp_path / "a.csv", rows, header), "c", rejects=out)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    got = read_rejects(out)
    assert list(got[0]) == [*header, "line", "error"]
    assert [r["line"] for r in got] == ["3", "5"]
    assert got[0]["phone"] == "12345678901"  # the bank's own row, to fix and re-import
    assert got[0]["note"] == "x"
    assert got[0]["error"] == (
        "phone: not a valid phone number: '123****8901'; gender: must be M or F, got 'Q'"
    )
    assert got[1]["error"] == "scenario: is required"
    fixed = [{**r, "phone": phone(1), "gender": "F", "scenario": "dormant"} for r in got]
    again = import_file(
        engine, write_csv(tmp_path / "fixed.csv", fixed, [*header, "line", "error"]), "c"
    )
    assert (again.inserted, again.rejected) == (2, 0)
    assert account(engine, account_id(1)).extra == {"note": "x"}


def test_an_import_that_loses_a_race_for_an_account_writes_its_batch_again(
    engine: Engine, tmp_path: Path
) -> None:
    """Another import commits account 0 between this batch's read and its insert (the
    window two overlapping imports at once can hit): the batch is rolled back and
    written again, account 0 becomes an update, nothing is duplicated or lost."""
    path = write_csv(tmp_path / "a.csv", [good(i) for i in range(4)])
    raced: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def other_import_first(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if raced or not statement.lstrip().upper().startswith("INSERT INTO ACCOUNT "):
            return
        raced.append(statement)
        with engine.connect() as other:  # another connection, committed at once
            other.execute(
                sa.insert(AccountRow).values(
                    account_id=account_id(0), name="旧名字", phone=phone(0),
                    phone_e164=f"+86{phone(0)}", scenario="dormant", model_score=0.1,
                    timezone="Asia/Shanghai", extra={},
                )
            )  # fmt: skip
            other.commit()

    try:
        report = import_file(engine, path, "c")
    finally:
        sa.event.remove(engine, "before_cursor_execute", other_import_first)
    assert raced, "the race was not staged"
    assert (report.loaded, report.rejected) == (4, 0)
    assert (report.inserted, report.updated) == (3, 1)  # the second attempt's counts only
    assert count(engine, AccountRow) == 4 and len(items(engine)) == 4
    assert account(engine, account_id(0)).name != "旧名字"  # the file's values won
