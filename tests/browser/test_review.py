"""A reviewer reviews a call end to end in a real browser, using the keyboard shortcuts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.settings import Settings
from bot.store.models import CallRow, OutboxRow, ReviewItemRow, VerdictRow
from tests.browser.conftest import Live, screenshot, sign_in

pytestmark = pytest.mark.slow


def other_disposition(page: Any) -> str:
    """A disposition other than the call's own (the summary's data-value)."""
    options = page.locator("#corrected-disposition option")
    current = page.locator(".desk-summary strong[data-value]").get_attribute("data-value")
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
    page.locator("#verdict-reason").press("Control+Enter")  # submit and next
    page.wait_for_url(re.compile(rf"/review/\d+\?done={item_id}$"))
    assert f"条目 {item_id} 的复核结论已记录" in page.locator("[role=status]").inner_text()

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


# -- the review desk: keyboard only, submit and next, the player -------------------------


def write_stereo_wav(path: Path, seconds: float, rate: int = 8000) -> None:
    """A call-like recording: callee on the left (440 Hz), bot on the right (660 Hz)."""
    import numpy as np
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    tones = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), 0.1 * tones, rate, subtype="PCM_16")


@pytest.fixture(scope="module")
def desk(live: Live) -> tuple[int, list[int]]:
    """A campaign of its own (its id and its review items in the queue's oldest-first
    order), every call with a stereo recording under the dashboard's recordings dir."""
    campaign = populate_again(live.engine, "review-desk")
    database = live.engine.url.database
    assert database is not None
    recordings = Settings(data_dir=Path(database).parent).recordings_path
    with Session(live.engine) as s:
        items = s.exec(
            select(ReviewItemRow).join(CallRow, CallRow.id == ReviewItemRow.call_id)  # type: ignore[arg-type]
        ).all()
        mine = []
        for item in items:
            call = s.get(CallRow, item.call_id)
            assert call is not None
            if call.recording_path is not None or item.state != "open":
                continue
            if not _in_campaign(s, call, campaign):
                continue
            name = f"desk/call-{call.id}.wav"
            write_stereo_wav(recordings / name, (call.duration_s or 60) + 1)
            call.recording_path = name
            s.add(call)
            mine.append(item.id or 0)
        s.commit()
    return campaign, mine


def populate_again(engine: Any, campaign: str) -> int:
    """:func:`tests.web.factories.populate` once more, the personas under other account
    numbers (an account is stored once)."""
    import yaml

    from bot.campaign.recorder import account_fields
    from bot.campaign.worker import SimulatedGateway, Worker
    from bot.core.account import Account
    from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign
    from tests.conftest import SHARED
    from tests.web.factories import investigator

    personas = [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((SHARED / "personas").glob("*.yaml"))
    ]
    for p in personas:
        p["account"]["account_id"] = "9" + p["account"]["account_id"][1:]
    accounts = [account_fields(Account.model_validate(p["account"])) for p in personas]
    campaign_id, _ = make_campaign(engine, campaign, accounts=accounts, max_attempts=1)
    gateway = SimulatedGateway({p["account"]["account_id"]: p["answers"] for p in personas})
    Worker(engine, investigator(), gateway, poll_s=0.01, clock=lambda: MONDAY_10_LOCAL).run(
        until_idle=True
    )
    return campaign_id


def _in_campaign(session: Session, call: CallRow, campaign: int) -> bool:
    from bot.store.models import CampaignAccountRow

    row = session.get(CampaignAccountRow, call.campaign_account_id)
    return row is not None and row.campaign_id == campaign


def queue_order(page: Any, base: str, qs: str) -> list[int]:
    body = page.request.get(f"{base}/api/v1/review?{qs}").json()
    return [int(i["id"]) for i in body["open"]]


def test_five_items_by_keyboard_only_with_submit_and_next(
    page: Any, live: Live, desk: tuple[int, list[int]]
) -> None:
    campaign, _ = desk
    qs = f"campaign={campaign}&sort=oldest"
    sign_in(page, live.url, "reviewer")
    order = queue_order(page, live.url, qs)
    assert len(order) >= 6
    page.goto(f"{live.url}/review?{qs}")
    done_before = int(page.locator("#done-today").inner_text())
    page.keyboard.press("n")  # start reviewing: the first item, claimed
    page.wait_for_url(f"{live.url}/review/{order[0]}?{qs}")
    with Session(live.engine) as s:
        first = s.get(ReviewItemRow, order[0])
        assert first is not None and first.state == "claimed"

    for n in range(5):
        item = order[n]
        assert page.locator("#verdict-form").is_visible()
        if n == 1:  # the help overlay, the turns, the player's speed and channel
            page.keyboard.press("?")
            assert page.locator("#keys-help").is_visible()
            page.keyboard.press("Escape")
            assert page.locator("#keys-help").is_hidden()
            page.keyboard.press("j")
            page.keyboard.press("j")
            assert page.locator(".transcript .turn.current").get_attribute("data-idx") == "1"
            page.keyboard.press("2")
            assert page.evaluate("document.getElementById('player-audio').playbackRate") == 1.5
            page.keyboard.press("v")
            assert page.locator("#player .channel[aria-pressed=true]").inner_text() == "客户"
        if n < 4:
            page.keyboard.press("a")  # agree: the focus is on "Submit and next"
            page.keyboard.press("Enter")
        else:  # overturn: the focus is on the corrected disposition
            page.keyboard.press("o")
            page.keyboard.press("ArrowDown")  # the first other disposition
            page.keyboard.press("Tab")  # the corrected band: unchanged
            page.keyboard.press("Tab")
            page.keyboard.type("Holder lent the card; a typed j or a stays text.")
            page.keyboard.press("Control+Enter")
        page.wait_for_url(f"{live.url}/review/{order[n + 1]}?{qs}&done={item}")
        assert f"条目 {item} 的复核结论已记录" in page.locator("[role=status]").inner_text()

    assert int(page.locator("#done-today").inner_text()) == done_before + 5
    screenshot(page, "review-desk")
    with Session(live.engine) as s:
        verdicts = {
            v.review_item_id: v
            for v in s.exec(select(VerdictRow).where(col(VerdictRow.review_item_id).in_(order[:5])))
        }
        assert sorted(verdicts) == sorted(order[:5])
        assert [verdicts[i].agree for i in order[:5]] == [True, True, True, True, False]
        overturned = verdicts[order[4]]
        assert overturned.corrected_disposition and "typed j or a" in overturned.reason
        nxt = s.get(ReviewItemRow, order[5])
        assert nxt is not None and nxt.state == "claimed"  # opened already claimed


def test_click_a_turn_to_hear_it_and_the_narrow_screen(
    page: Any, browser: Any, live: Live, desk: tuple[int, list[int]]
) -> None:
    _, items = desk
    sign_in(page, live.url, "reviewer")
    page.goto(f"{live.url}/review/{items[-1]}")
    page.keyboard.press("c")  # claim: the verdict form, the evidence above it, both in view
    page.wait_for_selector("#verdict-form")
    form = page.locator("#verdict-form").bounding_box()
    assert page.locator("#evidence").bounding_box()["y"] < form["y"]
    assert form["y"] + form["height"] <= page.viewport_size["height"]
    turn = page.locator(".transcript .turn.bot").nth(3)
    start = float(turn.get_attribute("data-start"))
    assert start > 5
    ticks = page.locator("#player-bar .tick")
    assert ticks.count() == page.locator(".transcript .turn").count()
    turn.click()  # seeks there and plays
    # The recording loads on this first click: the seek lands once its metadata is in
    # (a loaded machine takes a while), then the bar and the highlight follow.
    settled = (
        "s => { const a = document.getElementById('player-audio');"
        " const fill = parseFloat(document.getElementById('player-fill').style.width);"
        " return a.readyState >= 1 && Math.abs(a.currentTime - s) < 1.5 && fill > 0; }"
    )
    page.wait_for_function(settled, arg=start, timeout=20_000)
    page.evaluate("document.getElementById('player-audio').pause()")
    # read the position in the same evaluation that saw it settle: a second round trip
    # on a loaded machine can land while the media element is still finishing its seek
    at = page.wait_for_function(
        f"s => ({settled})(s) && {{ at: document.getElementById('player-audio').currentTime }}",
        arg=start,
        timeout=20_000,
    ).json_value()["at"]
    assert start - 0.05 <= at < start + 1.5
    assert page.locator(".transcript .turn.playing").get_attribute("id") == turn.get_attribute("id")
    # the evidence and the verdict sit beside the transcript, the form in view
    aside = page.locator(".desk-right").bounding_box()
    left = page.locator(".desk-left").bounding_box()
    assert aside["x"] > left["x"] + left["width"] - 1
    page.mouse.wheel(0, 3000)
    assert page.locator(".desk-right").bounding_box()["y"] >= -1  # sticky

    narrow = browser.new_context(viewport={"width": 390, "height": 844})
    small = narrow.new_page()
    try:
        sign_in(small, live.url, "reviewer")
        small.goto(f"{live.url}/review/{items[-1]}")
        screenshot(small, "review-desk-390")
        # nothing of the review screen runs past the screen's edge (the page header is
        # base.html's, outside this screen)
        wide = small.evaluate(
            "Array.from(document.querySelectorAll('#review *'))"
            ".filter(e => e.getBoundingClientRect().right > 391)"
            ".map(e => e.tagName + '.' + e.className + '#' + e.id)"
        )
        assert wide == []
        stacked_left = small.locator(".desk-left").bounding_box()
        assert small.locator(".desk-right").bounding_box()["y"] > stacked_left["y"]
    finally:
        narrow.close()
