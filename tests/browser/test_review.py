"""A reviewer reviews a call end to end in a real browser, using the keyboard shortcuts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from bot.store.models import OutboxRow, ReviewItemRow, VerdictRow
from tests.browser.conftest import Live, screenshot, sign_in

pytestmark = pytest.mark.slow


def other_disposition(page: Any) -> str:
    """A disposition other than the call's own (the first option reads "unchanged (X)")."""
    options = page.locator("#corrected-disposition option")
    current = options.first.inner_text().removeprefix("unchanged (").rstrip(")")
    values = [v for v in options.evaluate_all("os => os.map(o => o.value)") if v]
    return next(v for v in values if v != current)


def test_claim_overturn_and_the_correction_goes_to_the_bank(page: Any, live: Live) -> None:
    sign_in(page, live.url, "reviewer")
    page.click("header nav a[href='/review']")
    screenshot(page, "review-queue")
    first = page.locator("table.open tbody tr").first
    item_id = int(first.locator("td").first.inner_text())
    first.locator("button[type=submit]").click()
    page.wait_for_url(f"{live.url}/review/{item_id}")
    assert page.locator("#verdict-form").is_visible()

    page.keyboard.press("j")  # select the first turn: the transcript highlights it
    assert page.locator(".transcript .turn.current").count() == 1
    page.keyboard.press("o")  # overturn: the focus moves to the corrected disposition
    assert page.locator("#decision-overturn").is_checked()
    corrected = other_disposition(page)
    page.select_option("#corrected-disposition", corrected)
    page.fill("#verdict-reason", "The holder hesitated about who holds the card.")
    screenshot(page, "review-item")
    page.locator("#verdict-reason").press("Control+Enter")
    page.wait_for_url(f"{live.url}/review?done={item_id}")
    assert f"Verdict recorded for item {item_id}" in page.locator("[role=status]").inner_text()

    with Session(live.engine) as s:
        item = s.get(ReviewItemRow, item_id)
        assert item is not None and item.state == "done"
        verdict = s.exec(select(VerdictRow).where(VerdictRow.review_item_id == item_id)).one()
        assert not verdict.agree
        assert verdict.corrected_disposition == corrected
        corrections = s.exec(select(OutboxRow).where(OutboxRow.kind == "correction")).all()
        assert any(
            o.payload.get("review", {}).get("verdict_id") == verdict.id for o in corrections
        ), [o.payload for o in corrections]


def test_an_overturn_without_a_reason_is_stopped_and_nothing_is_saved(
    page: Any, live: Live
) -> None:
    sign_in(page, live.url, "reviewer")
    page.goto(f"{live.url}/review")
    page.locator("table.open tbody tr").first.locator("button[type=submit]").click()
    page.wait_for_selector("#verdict-form")
    item_url = page.url
    item_id = int(page.locator("#review").get_attribute("data-item"))
    page.keyboard.press("o")
    corrected = other_disposition(page)
    page.select_option("#corrected-disposition", corrected)
    page.click("#verdict-submit")
    assert page.url == item_url  # the browser kept the form: the reason is required
    assert page.locator("#verdict-reason").evaluate("el => !el.validity.valid")
    assert page.input_value("#corrected-disposition") == corrected
    page.keyboard.press("Escape")
    page.click("#decision-agree")  # agreeing needs no reason
    assert page.locator("#verdict-reason").evaluate("el => el.validity.valid")
    with Session(live.engine) as s:
        item = s.get(ReviewItemRow, item_id)
        assert item is not None and item.state == "claimed"
        assert not s.exec(select(VerdictRow).where(VerdictRow.review_item_id == item_id)).all()
