from __future__ import annotations

import logging

import pytest

from bot.core.masking import (
    CARD_NUMBER_RE,
    ID_NUMBER_RE,
    PHONE_RE,
    PiiMaskingFilter,
    mask_card,
    mask_id,
    mask_phone,
    mask_text,
)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("6225880100000001", "************0001"),
        ("6225 8801 0000 0001", "**** **** **** 0001"),
        ("6225-8801-0000-0001", "****-****-****-0001"),
        ("6222021001123456789", "***************6789"),
    ],
)
def test_mask_card_keeps_only_last_four(raw: str, masked: str) -> None:
    assert mask_card(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+8613800000001", "+86 138****0001"),
        ("+86 138 0000 0001", "+86 138****0001"),
        ("008613800000001", "+86 138****0001"),
        ("13800000001", "138****0001"),
        ("138-0000-0001", "138****0001"),
        ("020-12345678", "020****5678"),
        ("0755 1234567", "075****4567"),
    ],
)
def test_mask_phone(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("44010619900101123X", "4****************X"),
        ("440106199001011234", "4****************4"),
        ("440106 19900101 1234", "4***** ******** ***4"),
    ],
)
def test_mask_id_keeps_first_and_last(raw: str, masked: str) -> None:
    assert mask_id(raw) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("卡号6225880100000001，是我的", "卡号************0001，是我的"),
        ("我电话13912345678", "我电话139****5678"),
        ("电话是+86 139 1234 5678。", "电话是+86 139****5678。"),
        ("身份证44010619900101123x", "身份证4****************x"),
        (
            "身份证440106199001011234，卡号6217 0032 1000 4567",
            "身份证4****************4，卡号**** **** **** 4567",
        ),
        ("座机020-12345678", "座机020****5678"),
        ("转了49800元", "转了49800元"),  # amounts are not PII
        ("2026-11-18那笔", "2026-11-18那笔"),  # dates are not PII
        ("订单号A13912345678B", "订单号A13912345678B"),  # glued to letters: not a phone
        ("没有号码", "没有号码"),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_id_with_invalid_birth_month_is_not_an_id_but_still_masked() -> None:
    assert ID_NUMBER_RE.search("440106199013011234") is None
    # 18 digits also fit the card pattern: masking errs on the safe side.
    assert mask_text("440106199013011234") == "**************1234"


def test_patterns_do_not_match_inside_longer_digit_runs() -> None:
    assert PHONE_RE.search("123813800000001999") is None
    assert CARD_NUMBER_RE.search("12345678901234567890123") is None


def test_masked_text_contains_no_full_number() -> None:
    text = "卡6225880100000001 手机13800000001 身份证44010619900101123X"
    masked = mask_text(text)
    for number in ("6225880100000001", "13800000001", "44010619900101123X"):
        assert number not in masked


def test_logging_filter_masks_message_and_args(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.masking")
    pii_filter = PiiMaskingFilter()
    logger.addFilter(pii_filter)
    try:
        with caplog.at_level(logging.INFO, logger="test.masking"):
            logger.info("card %s phone %s", "6225880100000001", "+8613800000001")
            logger.info("id 44010619900101123X in the message")
    finally:
        logger.removeFilter(pii_filter)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "card ************0001 phone +86 138****0001",
        "id 4****************X in the message",
    ]


def test_logging_filter_survives_bad_format_args() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "card %s %s", ("6225880100000001",), None
    )
    assert PiiMaskingFilter().filter(record)
    assert "6225880100000001" not in record.getMessage()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我的电话是幺三八零零零零零零零幺", "我的电话是138****0001"),
        ("号码 138 幺二三四 5678 对", "号码 138****5678 对"),
        ("卡号六二二五 八八零一 零零零零 零零零一", "卡号************0001"),
        ("身份证四四零一零六一九九零零一零一一二三X", "身份证4****************X"),
        ("编号一二三四五六七八", "编号****5678"),  # no known shape: all but the last four
        ("转了四万九千八百块", "转了四万九千八百块"),  # an amount, not a digit run
        ("二零二六年十一月", "二零二六年十一月"),  # a year is too short to be a number
    ],
)
def test_numbers_read_out_in_chinese_digits_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_logging_filter_masks_tracebacks_and_stacks() -> None:
    handler_out: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handler_out.append(self.format(record))

    log = logging.getLogger("test.masking.traceback")
    handler = ListHandler()
    handler.addFilter(PiiMaskingFilter())
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError("cannot dial 13800000001 for card 6225880100000001")
        except ValueError:
            log.exception("call failed", stack_info=True)
    finally:
        log.removeHandler(handler)
    text = handler_out[0]
    assert "Traceback" in text and "ValueError" in text and "Stack (most recent call last)" in text
    assert "138****0001" in text and "************0001" in text
    assert "13800000001" not in text and "6225880100000001" not in text


def test_pipecat_log_lines_are_masked_with_their_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from loguru import logger

    from bot.voice.logs import configure_pipecat_logging

    configure_pipecat_logging()
    try:
        raise RuntimeError("callee 13800000001 hung up")
    except RuntimeError:
        logger.exception("session for 13900000002 ended")
    err = capsys.readouterr().err
    assert "139****0002" in err and "138****0001" in err and "RuntimeError" in err
    assert "13800000001" not in err and "13900000002" not in err
