from __future__ import annotations

import datetime as dt

import pytest

from bot.core.templating import PromptError, compile_prompt, date_cn, money_cn, render, variables_of


@pytest.mark.parametrize(
    "value, spoken",
    [
        (49800, "4.98万元"),
        (800, "800元"),
        (126000, "12.6万元"),
        (10000, "1万元"),
        (99.5, "99.5元"),
        (None, ""),
    ],
)
def test_money_is_spoken_the_chinese_way(value: float | None, spoken: str) -> None:
    assert money_cn(value) == spoken


def test_date_cn_accepts_dates_and_iso_strings() -> None:
    assert date_cn(dt.date(2026, 11, 18)) == "11月18日"
    assert date_cn("2026-01-05") == "1月5日"


def test_strict_undefined_refuses_missing_variables() -> None:
    with pytest.raises(PromptError, match="undefined"):
        render(compile_prompt("尾号{{ card_last4 }}"), {"bank_name": "x"})


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ holder_name.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    ],
)
def test_sandbox_blocks_python_internals(source: str) -> None:
    with pytest.raises(PromptError):
        render(compile_prompt(source), {"holder_name": "张三"})


def test_syntax_error_carries_template_line() -> None:
    with pytest.raises(PromptError) as exc:
        compile_prompt("第一行\n第二行{% if %}")
    assert exc.value.line == 2


def test_variables_of_lists_free_variables_only() -> None:
    assert variables_of("{% set x = 1 %}{{ holder_name }}{{ txn_amount | money }}{{ x }}") == {
        "holder_name",
        "txn_amount",
    }


def test_whitespace_between_cjk_is_removed_but_kept_between_latin_words() -> None:
    assert (
        render(compile_prompt("您好，\n  请问\n您是 {{ n }} 吗？ OK then"), {"n": "张三"})
        == "您好，请问您是张三吗？OK then"
    )
