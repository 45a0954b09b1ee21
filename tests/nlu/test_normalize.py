from __future__ import annotations

import pytest

from nlu.normalize import normalize, to_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("這張卡是公司要求辦的工資卡。", "这张卡是公司要求办的工资卡。"),
        ("驗證碼我沒有給別人", "验证码我没有给别人"),
        ("  我是張偉  ", "我是张伟"),
        ("卡號６２２５８８０１", "卡号62258801"),
        ("ＡＢＣ　ｘｙｚ", "ABC xyz"),
        ("３．５万", "3.5万"),
        ("我 是 张伟", "我是张伟"),  # ASR segment spaces between CJK characters go
        ("卡号 6225 8801 0000 0001", "卡号 6225 8801 0000 0001"),  # digit groups keep theirs
        ("是的，\n\t我就是", "是的，我就是"),
        ("hello   world", "hello world"),
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("punct", ["，", "。", "！", "？", "；", "：", "、", "（", "）"])
def test_chinese_punctuation_is_kept(punct: str) -> None:
    assert normalize(f"不是借的{punct}是卖了") == f"不是借的{punct}是卖了"


@pytest.mark.parametrize("text", ["我一直在用", "一家物流公司", "一万步也走不到", "三心二意"])
def test_numerals_in_running_text_are_untouched(text: str) -> None:
    assert normalize(text) == text


def test_normalize_is_idempotent() -> None:
    once = normalize("這張卡　我借給朋友ＡＢ了，３０００塊")
    assert normalize(once) == once


@pytest.mark.parametrize(
    ("span", "value"),
    [
        ("八百", 800),
        ("五万", 50000),
        ("12万", 120000),
        ("3.5万", 35000),
        ("一千二", 1200),
        ("四万九千八", 49800),
        ("4.98万", 49800),
        ("两千", 2000),
        ("一万五", 15000),
        ("十二", 12),
        ("三点五万", 35000),
        ("1,200", 1200),
        ("49800", 49800),
        ("零", 0),
    ],
)
def test_to_number(span: str, value: float) -> None:
    assert to_number(span) == pytest.approx(value)


@pytest.mark.parametrize("span", ["", "万", "abc", "八百块", "几千", "两万多"])
def test_to_number_rejects_non_numerals(span: str) -> None:
    assert to_number(span) is None
