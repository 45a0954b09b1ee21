"""What each role sees: a reviewer is refused the compliance pages; supervisors see the
monitor, calls, feedback and audit pages (screenshots of each for docs/)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Live, screenshot, sign_in

pytestmark = pytest.mark.slow


def test_a_reviewer_is_refused_the_compliance_pages(page: Any, live: Live) -> None:
    sign_in(page, live.url, "reviewer")
    nav = page.inner_text("header nav")
    assert "复核" in nav and "话术工作台" not in nav and "审计" not in nav
    for path in ("/workspace", "/workspace/scripts/dormant_short/edit", "/audit"):
        response = page.goto(f"{live.url}{path}")
        assert response is not None and response.status == 403, path
        assert page.locator("[role=alert]").is_visible()
    sign_in(page, live.url, "supervisor")
    page.goto(f"{live.url}/audit")
    assert "拒绝访问" in page.inner_text("main")  # the refusals were audited (access_denied)


@pytest.mark.parametrize(
    ("path", "name", "expect"),
    [
        ("/monitor?days=0", "monitor", "svg"),  # all time: the calls are from 2026-11-23
        ("/calls", "calls", "table tbody tr"),
        ("/feedback", "feedback", "table"),
        ("/audit", "audit", "table tbody tr"),
    ],
)
def test_supervisor_pages_render_with_their_content(
    page: Any, live: Live, path: str, name: str, expect: str
) -> None:
    sign_in(page, live.url, "supervisor")
    response = page.goto(f"{live.url}{path}")
    assert response is not None and response.status == 200
    assert page.locator(expect).count() > 0
    assert page.locator("[role=alert]").count() == 0
    screenshot(page, name)


def test_call_detail_shows_the_transcript_and_the_score_explanation(page: Any, live: Live) -> None:
    sign_in(page, live.url, "supervisor")
    page.goto(f"{live.url}/calls")
    page.locator("table tbody tr a[href^='/calls/']").first.click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".transcript .turn").count() > 2
    text = page.inner_text("main")
    assert re.search(r"1\d{2}\*{4}\d{4}", text)  # phone numbers are masked
    assert not re.search(r"1\d{10}", text)
    screenshot(page, "call-detail")
