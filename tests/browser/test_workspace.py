"""Compliance edits a script in the browser (lint shown inline as they type), submits it,
and a second person approves and publishes it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Live, screenshot, sign_in

pytestmark = pytest.mark.slow

DOC = "/workspace/scripts/dormant_short"


def test_edit_lint_submit_and_a_second_person_publishes(page: Any, live: Live) -> None:
    sign_in(page, live.url, "compliance")
    page.click("header nav a[href='/workspace']")
    screenshot(page, "workspace")
    page.click(f"a[href='{DOC}']")
    published_before = int(re.search(r"\(v(\d+)\)", page.inner_text(".ws-actions"))[1])
    page.click(f"a[href='{DOC}/edit']")
    original = page.input_value("#ws-source")
    assert original.startswith("id: dormant_short")

    broken = original + "  - block: [never closed\n"
    page.fill("#ws-source", broken)
    bad_line = broken.count("\n")
    page.wait_for_selector("#ws-gutter .bad", timeout=10_000)  # lint as you type
    # the YAML parser notices the unclosed list where the input ends: that line or the next
    assert int(page.locator("#ws-gutter .bad").first.inner_text()) in (bad_line, bad_line + 1)
    assert "problem" in page.inner_text("#ws-status")
    problem = page.locator("#ws-problems li").first.inner_text()
    assert problem.startswith("scripts/dormant_short.yaml:") and "invalid YAML" in problem
    screenshot(page, "workspace-editor-lint")

    edited = original.replace("（简版，低风险）", "（简版，低风险，浏览器测试）")
    assert edited != original
    page.fill("#ws-source", edited)
    page.wait_for_function(
        "document.getElementById('ws-status').textContent === 'no problems'", timeout=10_000
    )
    page.click("#ws-form button[type=submit]")
    page.wait_for_url(re.compile(rf".*{DOC}/versions/\d+$"))
    version_url = page.url
    assert page.inner_text("h1 .ws-state") == "draft"
    page.click("button:has-text('Submit for approval')")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("h1 .ws-state") == "pending"
    assert page.locator("button:has-text('Approve and publish')").count() == 0  # not by its author
    assert "Waiting for a second person" in page.inner_text(".ws-actions")

    sign_in(page, live.url, "compliance2")
    page.goto(version_url)
    page.click("button:has-text('Approve and publish')")
    page.wait_for_load_state("networkidle")
    assert page.inner_text("h1 .ws-state") == "published"
    assert "approved by compliance2" in page.inner_text("main")
    page.goto(f"{live.url}{DOC}")
    published_now = int(re.search(r"\(v(\d+)\)", page.inner_text(".ws-actions"))[1])
    assert published_now > published_before
    assert version_url.endswith(f"/versions/{published_now}")
