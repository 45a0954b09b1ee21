"""speakable() and clause splitting."""

from __future__ import annotations

import pytest

from bot.voice.tts.text import digits, ends_sentence, speakable, split_clauses


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("尾号8866的卡", "尾号八八六六的卡"),
        ("尾号1234", "尾号幺二三四"),
        ("卡号：6222 0000 1111 2345", "卡号：六二二二零零零零幺幺幺幺二三四五"),
        ("请拨打95588", "请拨打九五五八八"),
        ("手机13800138000", "手机幺三八零零幺三八零零零"),
        ("转入5,000.00元", "转入五千元"),
        ("共12,345.60元", "共一万二千三百四十五点六元"),
        ("¥3万", "三万元"),
        ("￥200", "二百元"),
        ("一笔4.98万元", "一笔四点九八万元"),
        ("2万元", "两万元"),
        ("2000元", "两千元"),
        ("11月18日", "十一月十八日"),
        ("2026-11-18", "二零二六年十一月十八日"),
        ("2026年", "二零二六年"),
        ("下午3:30", "下午三点三十分"),
        ("8：00", "八点整"),
        ("利率3.5%", "利率百分之三点五"),
        ("3-5天", "三到五天"),
        ("按1表示是", "按一表示是"),
        ("第2次", "第二次"),
        ("０１２３", "零幺二三"),
        ("用APP转账", "用手机应用转账"),
        ("在ATM取款", "在自动取款机取款"),
        ("您好, 请问?", "您好，请问？"),
        ("（示例）“银行”……再见!", "示例银行，再见！"),
        ("abc您好", "您好"),
    ],
)
def test_speakable(text: str, said: str) -> None:
    assert speakable(text) == said


def test_speakable_output_is_only_cjk_and_pause_punctuation() -> None:
    out = speakable("Hi! 卡号6222-0000，金额$5.5k; 日期2026/11/18 @ 10:05 #1 *OK*")
    assert out
    assert all("\u4e00" <= ch <= "\u9fff" or ch in "，。！？；：〇" for ch in out), out


def test_digits_uses_yao_for_one_only_in_phone_style() -> None:
    assert digits("1010") == "幺零幺零"
    assert digits("1010", phone=False) == "一零一零"


def test_split_clauses_cuts_at_punctuation_and_keeps_it() -> None:
    text = "我们注意到这张卡有一笔资金往来，请问这笔钱是从哪里来的？又用在了哪里？"
    assert split_clauses(text) == [
        "我们注意到这张卡有一笔资金往来，",
        "请问这笔钱是从哪里来的？",
        "又用在了哪里？",
    ]


def test_split_clauses_merges_short_pieces_forward_and_at_the_end_backward() -> None:
    assert split_clauses("喂，您好，能听到吗？请问您是张三本人吗？") == [
        "喂，您好，能听到吗？",
        "请问您是张三本人吗？",
    ]
    assert split_clauses("好的，不打扰您了，我们稍后再联系您，再见。") == [
        "好的，不打扰您了，",
        "我们稍后再联系您，再见。",
    ]
    assert split_clauses("再见。") == ["再见。"]


def test_split_clauses_does_not_cut_inside_numbers() -> None:
    assert split_clauses("这张卡有一笔4.98万元的往来，共5,000.00元。") == [
        "这张卡有一笔4.98万元的往来，",
        "共5,000.00元。",
    ]


def test_split_clauses_ascii_punctuation_and_empty_text() -> None:
    assert split_clauses("Hello there, 您好吗? 我很好.") == ["Hello there,", "您好吗? 我很好."]
    assert split_clauses("") == []
    assert split_clauses("，。！") == []


def test_ends_sentence() -> None:
    assert ends_sentence("再见。")
    assert ends_sentence("是吗？")
    assert not ends_sentence("您好，")
