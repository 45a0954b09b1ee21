"""Signing in, out and being refused, in a real browser."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.slow


def test_sign_in_and_out(page: Any, live_server: str) -> None:
    page.goto(f"{live_server}/")
    assert page.url.startswith(f"{live_server}/login")
    sign_in(page, live_server, "reviewer")
    assert page.locator("header .who").inner_text().startswith("reviewer")
    page.click("header .who button")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{live_server}/login"
    page.goto(f"{live_server}/")
    assert "/login" in page.url


def test_a_wrong_password_is_refused(page: Any, live_server: str) -> None:
    sign_in(page, live_server, "reviewer", "not the password at all")
    assert "/login" in page.url
    assert page.locator("[role=alert]").inner_text() == "用户名或密码错误"
