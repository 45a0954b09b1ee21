"""``/api/docs`` renders with the network off: a real browser opens it from the live
dashboard, every request that would leave 127.0.0.1 is aborted and recorded, and the
operations still appear (Swagger UI comes from the swagger-ui-py package)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import Live, browser, live, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

LOCAL = {"127.0.0.1", "localhost"}


def test_the_api_docs_render_offline(page: Any, live: Live) -> None:  # noqa: F811
    left: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            left.append(url)
            route.abort()

    page.route("**/*", only_local)
    response = page.goto(f"{live.url}/api/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".opblock-tag", timeout=30_000)
    tags = page.inner_text(".swagger-ui")
    for tag in ("campaigns", "tokens", "calls"):
        assert tag in tags, tag
    assert page.locator(".opblock").count() > 20  # the operations, not just the headings
    assert left == [], left
