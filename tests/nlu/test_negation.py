from __future__ import annotations

import pytest

from nlu.negation import in_spans, is_negated, negation_spans


def _negated_parts(text: str) -> list[str]:
    return [text[s:e] for s, e in negation_spans(text)]


def _negated(text: str, word: str) -> bool:
    start = text.index(word)
    return is_negated(text, start, start + len(word))


@pytest.mark.parametrize(
    ("text", "word", "negated"),
    [
        ("我从来没有把卡借给别人", "借给别人", True),
        ("卡一直是我自己用的，没有给过别人", "给过别人", True),
        ("卡一直是我自己用的，没有给过别人", "自己用", False),
        ("不是借的，是卖了", "借", True),
        ("不是借的，是卖了", "卖", False),
        ("不是借的是卖的", "卖", False),
        ("不是借的而是卖的", "卖", False),
        ("我没有帮别人刷单，但是我借给朋友了", "刷单", True),
        ("我没有帮别人刷单，但是我借给朋友了", "朋友", False),
        ("我没有帮别人刷单但是借给朋友了", "朋友", False),
        ("卡没有卖，只是借给朋友了", "朋友", False),
        ("我并没有给别人验证码", "验证码", True),
        ("我绝对没有卖卡", "卖卡", True),
        ("我从未出租过银行卡", "出租", True),
        ("我不曾借过卡", "借过卡", True),
        ("我不会把密码告诉别人", "密码", True),
        ("这钱不是工资，是我卖车的钱", "工资", True),
        ("这钱不是工资，是我卖车的钱", "卖车", False),
        ("我没工作", "工作", True),
        ("你们别再打了", "打", True),
        ("卡里无存款", "存款", True),
        ("我未满十八岁", "十八岁", True),
    ],
)
def test_scope(text: str, word: str, negated: bool) -> None:
    assert _negated(text, word) is negated


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("王强我不认识，应该是我朋友的客户吧", "王强"),
        ("我不认识王强", "王强"),
        ("我不知道他们叫什么，是网上认识的", "网上认识"),
        ("我不清楚是不是工资", "工资"),
        ("不记得那个人叫什么了", "那个人"),
        ("卡给别人了", "别人"),
        ("你有没有把卡借给别人", "借给别人"),
        ("是不是你朋友转的", "朋友"),
        ("没关系，钱是我老公转的", "老公"),
        ("没办法，只能借给他", "借给他"),
        ("不好意思，卡是我老婆在用", "老婆"),
        ("特别是上个月工资", "工资"),
        ("无论如何卡都是我自己用", "自己用"),
        ("不过钱是我自己的", "自己"),
    ],
)
def test_lexical_words_open_no_scope(text: str, word: str) -> None:
    assert not _negated(text, word)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("不是，你打错了", []),  # a bare "no" answer negates nothing after the comma
        ("我没有工作", ["工作"]),
        ("没有，没有给别人", ["给别人"]),
        ("我没借，也没卖", ["借", "卖"]),
        ("好的，谢谢", []),
        ("", []),
    ],
)
def test_spans(text: str, parts: list[str]) -> None:
    assert _negated_parts(text) == parts


def test_item_starting_with_its_own_negator_is_not_negated() -> None:
    text = "我没有工作"
    assert not is_negated(text, 1, 5)  # "没有工作" as a whole (occupation 无业)


def test_in_spans_uses_the_start() -> None:
    assert in_spans([(2, 6)], 2, 4)
    assert in_spans([(2, 6)], 5, 8)
    assert not in_spans([(2, 6)], 6, 7)
    assert not in_spans([(2, 6)], 0, 3)
