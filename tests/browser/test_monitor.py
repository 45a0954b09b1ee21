"""The monitor in a real browser: it refreshes itself in place (a call stored after the
page loaded shows up without a reload), and its charts fit a 390 px phone screen."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.store.models import CallRow, utcnow
from tests.browser.conftest import Live, sign_in

pytestmark = pytest.mark.slow

#: Run the page's refresh timer fast: the test's clock, not the page's behaviour.
FAST_TIMERS = (
    "const _si = window.setInterval;window.setInterval = (f, ms) => _si(f, Math.min(ms, 300));"
)


def calls_finished(page: Any) -> int:
    tile = page.locator(".tile[data-k=calls] b")
    return int(tile.inner_text())


def test_the_monitor_refreshes_itself(page: Any, live: Live) -> None:
    page.add_init_script(FAST_TIMERS)
    sign_in(page, live.url, "supervisor")
    page.goto(f"{live.url}/monitor?days=0")
    before = calls_finished(page)
    with Session(live.engine) as s:  # one more finished call, as a worker would store it
        last = s.exec(select(CallRow).order_by(col(CallRow.id).desc())).first()
        assert last is not None
        copy = CallRow(
            **last.model_dump(exclude={"id", "started_at", "ended_at"}),
            started_at=utcnow() - dt.timedelta(minutes=1),
            ended_at=utcnow(),
        )
        s.add(copy)
        s.commit()
        added = copy.id
    try:
        page.wait_for_function(
            "n => Number(document.querySelector('.tile[data-k=calls] b').textContent) > n",
            arg=before,
            timeout=15_000,
        )
        assert calls_finished(page) == before + 1
        assert page.url.endswith("/monitor?days=0")  # swapped in place, not reloaded
    finally:  # the live database is shared by the session's browser tests
        with Session(live.engine) as s:
            row = s.get(CallRow, added)
            if row is not None:
                s.delete(row)
                s.commit()


def test_the_monitor_fits_a_phone(page: Any, live: Live) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live.url, "supervisor")
    page.goto(f"{live.url}/monitor?days=0")
    for chart in page.locator(".charts svg").all():
        box = chart.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390


def test_chinese_by_default_english_on_request(page: Any, live: Live) -> None:
    """The browser asks for zh-CN (the harness's locale): the monitor is in Chinese with
    vocabulary labels; the language link switches to English, which sticks."""
    sign_in(page, live.url, "supervisor")
    page.goto(f"{live.url}/monitor?days=0")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert "外呼任务监控" in page.inner_text("h1") and "监控" in page.inner_text("header nav")
    outcomes = page.locator(".charts section", has_text="通话结果").inner_text()
    assert "已完成" in outcomes and "completed" not in outcomes  # labels, not raw values
    page.click("header a.lang")
    assert page.get_attribute("html", "lang") == "en"
    assert "Campaign monitor" in page.inner_text("h1")
    page.goto(f"{live.url}/calls")  # the choice is remembered
    assert page.get_attribute("html", "lang") == "en" and "Monitor" in page.inner_text("header nav")
