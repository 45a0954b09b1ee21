"""Every render runs under hard limits: templates that would hang the process or
exhaust its memory are refused at their line with the reason, never an exception."""

from __future__ import annotations

import pytest

from bot.core import render_budget
from bot.core.render_budget import RenderLimits
from bot.core.templating import PromptError, compile_prompt, render

CTX: dict[str, object] = {"holder_name": "张三", "txn_amount": 49800}

EXPONENTIAL_MACRO = """{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}
您好
{{ f(20) }}"""

DOUBLING = "{% set s = 'ab' %}\n" + "{% set s = s ~ s %}\n" * 40 + "{{ s|length }}"

#: (template, words the refusal must contain)
REFUSED = [
    pytest.param(EXPONENTIAL_MACRO, "steps", id="exponential-macro"),
    pytest.param(DOUBLING, "characters", id="set-doubling"),
    pytest.param("{{ 'x' * 1000000000 }}", "repeating", id="string-times-huge"),
    pytest.param(
        "{% set x = ['x' * 20000] %}{{ (x * 20000)|join }}", "repeating", id="list-of-big"
    ),
    pytest.param("{{ 'x' * 3000 }}", "prompt of more than", id="long-prompt"),
    pytest.param("{{ 2 ** 100000 }}", "power", id="huge-power"),
    pytest.param(
        "{% set n = 3 %}" + "{% set n = n * n %}" * 12 + "{{ n }}", "integer", id="int-squaring"
    ),
    pytest.param("{{ range(100000)|list|length }}", "range", id="huge-range"),
    pytest.param(
        "{% for a in range(20000) %}{% for b in range(20000) %}{% endfor %}{% endfor %}",
        "steps",
        id="nested-loops",
    ),
    pytest.param(
        "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "nested", id="recursive-loop"
    ),
    pytest.param(
        "{% macro f(n, x) %}{% if n %}{{ f(n - 1, [x, x]) }}{% else %}{{ x }}{% endif %}"
        "{% endmacro %}{{ f(25, 'abc') }}",
        "characters",
        id="macro-doubling-list",
    ),
    pytest.param(
        "{% set s = 'x' * 10000 %}{{ s|replace('', s)|length }}", "replacement", id="replace-empty"
    ),
    pytest.param("{{ '%099999d' % 1 }}", "format width", id="percent-width"),
    pytest.param("{{ '%*d' % (99999, 1) }}", "format width", id="percent-star"),
    pytest.param("{{ ('x' * 19000).join(['a', 'b', 'c']) }}", "joining", id="str-join"),
    pytest.param("{{ 'x'.center(1000000000) }}", "sandbox", id="method-not-allowed"),
    pytest.param("{{ ''.__class__ }}", "sandbox", id="escape-still-refused"),
    pytest.param("{{ [[1], [2]]|sum(start=[]) }}", "sum", id="sum-of-lists"),
]


@pytest.mark.parametrize(("source", "words"), REFUSED)
def test_exhausting_templates_are_refused_with_the_reason(source: str, words: str) -> None:
    with pytest.raises(PromptError) as info:
        render(compile_prompt(source), CTX)
    assert info.value.refused, info.value.message
    assert words in info.value.message


def test_the_refusal_names_the_line_of_the_template() -> None:
    with pytest.raises(PromptError) as info:
        render(compile_prompt("您好\n{{ holder_name }}\n{{ 'x' * 1000000000 }}"), CTX)
    assert info.value.line == 3


def test_the_exponential_macro_names_the_line_that_spends_the_budget() -> None:
    with pytest.raises(PromptError) as info:
        render(compile_prompt(EXPONENTIAL_MACRO), CTX)
    assert info.value.line == 1  # the macro's body, where the calls are made


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("{{ 1 // 0 }}", "ZeroDivisionError"),
        ("{{ 1 % 0 }}", "ZeroDivisionError"),
        ("{% for i in range(1, 5, 0) %}{{ i }}{% endfor %}", "ValueError"),
        ("{{ 4 is divisibleby(0) }}", "ZeroDivisionError"),
        ("{{ holder_name + 1 }}", "TypeError"),
    ],
)
def test_mistakes_are_errors_not_exceptions(source: str, kind: str) -> None:
    with pytest.raises(PromptError) as info:
        render(compile_prompt(source), CTX)
    assert not info.value.refused
    assert kind in info.value.message


def test_filters_outside_the_phone_set_do_not_compile() -> None:
    for name in ("center", "indent", "format", "wordwrap", "tojson", "random", "batch"):
        with pytest.raises(PromptError, match="filter"):
            compile_prompt("{{ 'x'|" + name + "(3) }}")


def test_the_time_limit_stops_a_render_that_stays_within_its_steps() -> None:
    limits = RenderLimits(seconds=0.05, steps=10**9)
    slow = "{% for a in range(20000) %}{% for b in range(20000) %}{% endfor %}{% endfor %}"
    with pytest.raises(PromptError, match="s of rendering"):
        render(compile_prompt(slow), CTX, limits)


def test_a_session_budget_bounds_many_renders_together() -> None:
    loop = compile_prompt("{% for i in range(900) %}{% endfor %}好")
    assert render(loop, CTX) == "好"
    with render_budget.session(RenderLimits(steps=5_000)), pytest.raises(PromptError) as info:
        for _ in range(10):
            render(loop, CTX)
    assert "5,000 steps" in info.value.message


def test_ordinary_prompts_render_as_before() -> None:
    source = (
        "{% macro amount(x) %}{{ x|money }}{% endmacro %}"
        "{{ holder_name }}您好，{% for w in ['一', '二'] %}{{ w }}{% if not loop.last %}、"
        "{% endif %}{% endfor %}，金额{{ amount(txn_amount) }}，{{ holder_name|replace('张', '章') }}"
        "{{ '，'.join(['甲', '乙']) }}{{ '%s元' % 5 }}{{ (3 * 4) ~ '' }}{{ [1, 2]|sum }}"
    )
    assert render(compile_prompt(source), CTX) == "张三您好，一、二，金额4.98万元，章三甲，乙5元123"


def test_limits_do_not_leak_between_renders() -> None:
    template = compile_prompt("{% for i in range(15000) %}{% endfor %}好")
    for _ in range(5):  # each render has its own steps
        assert render(template, CTX) == "好"
