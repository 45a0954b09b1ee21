"""The account's network in a real browser: two accounts whose flagged transactions went
to one counterparty are drawn as two account circles, the shared node and an edge from
each, by the page's own script (no request leaves the dashboard)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from bot.store.links import refresh_account
from bot.store.models import AccountRow
from tests.browser.conftest import Live, screenshot, sign_in

pytestmark = pytest.mark.slow


def _two_accounts_sharing_a_counterparty(live: Live) -> tuple[int, int]:
    with Session(live.engine) as s:
        rows = []
        for n in (1, 2):
            row = AccountRow(
                account_id=f"90010030{n}", name=f"网络测试{n}", phone=f"+86137000003{n:02d}",
                phone_e164=f"+86137000003{n:02d}", scenario="suspicious_txn", model_score=0.9,
                txn_counterparty="孙悟空",
            )  # fmt: skip
            s.add(row)
            s.flush()
            refresh_account(s, row, None)  # names link without a key
            rows.append(row.id or 0)
        s.commit()
    return rows[0], rows[1]


def test_two_accounts_sharing_a_counterparty_are_drawn(page: Any, live: Live) -> None:
    first, second = _two_accounts_sharing_a_counterparty(live)
    outside: list[str] = []

    def local_only(route: Any) -> None:
        if route.request.url.startswith(live.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    sign_in(page, live.url, "supervisor")
    response = page.goto(f"{live.url}/accounts/{first}/network")
    assert response is not None and response.status == 200
    page.wait_for_selector("#network svg .node")
    assert page.locator("#network svg g.account").count() == 2
    assert page.locator(f"#network svg g.account[data-id='a{second}']").count() == 1
    assert page.locator("#network svg g.account.centre").count() == 1
    shared = page.locator("#network svg g.entity", has_text="孙悟空")
    assert shared.count() == 1 and "(2)" in (shared.text_content() or "")
    # its tooltip in the page's language: the node's kind and holders, not the raw value
    assert shared.locator("title").text_content() == "人名: 孙悟空 · 关联 2 个账户"
    assert page.locator("#network svg line.edge").count() >= 2
    assert outside == []
    screenshot(page, "account-network")
    page.locator(f"#network svg g.account[data-id='a{second}'] circle").click()
    page.wait_for_url(f"**/accounts/{second}/network")
    page.goto(f"{live.url}/network")
    assert "孙悟空" in page.inner_text("table.groups")
    screenshot(page, "network-groups")
    page.goto(f"{live.url}/network?lang=en")
    assert page.inner_text("h1") == "Network groups" and "Person: 孙悟空" in page.inner_text(
        "table.groups"
    )
