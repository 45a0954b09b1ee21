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
    tile = page.locator(".tile", has_text="calls finished").locator("b")
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
    page.wait_for_function(
        "n => Number(document.evaluate(\"//div[contains(@class,'tile')][span='calls finished']/b\","
        " document, null, XPathResult.STRING_TYPE, null).stringValue) > n",
        arg=before,
        timeout=15_000,
    )
    assert calls_finished(page) == before + 1
    assert page.url.endswith("/monitor?days=0")  # swapped in place, not reloaded


def test_the_monitor_fits_a_phone(page: Any, live: Live) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live.url, "supervisor")
    page.goto(f"{live.url}/monitor?days=0")
    for chart in page.locator(".charts svg").all():
        box = chart.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
