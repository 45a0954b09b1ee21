"""Errors in the shape the client reads: pages for browsers (with the navigation), JSON
for the API, a 500 that says nothing about the bug; and the login page telling a user on
plain HTTP why signing in cannot work there."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from bot.settings import Settings
from bot.web.app import create_app
from bot.web.config import WebSettings
from tests.web.conftest import Clock, login


def broken_app(engine: Engine, clock: Clock) -> TestClient:
    app = create_app(Settings(), engine, clock=clock)

    def boom() -> None:
        raise RuntimeError("secret detail 13812345678")

    app.add_api_route("/boom", boom, include_in_schema=False)
    app.add_api_route("/api/v1/boom", boom, include_in_schema=False)
    return TestClient(app, base_url="https://testserver", raise_server_exceptions=False)


def test_a_bug_is_a_500_page_or_json_without_its_detail(
    engine: Engine, clock: Clock, users: dict[str, int]
) -> None:
    client = broken_app(engine, clock)
    login(client, "reviewer")
    page = client.get("/boom")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "<nav" in page.text and "系统内部出错，已记录日志" in page.text
    assert "secret detail" not in page.text and "13812345678" not in page.text
    api = client.get("/api/v1/boom")
    assert api.status_code == 500
    assert api.json() == {
        "detail": "something went wrong on our side; it has been logged",
        "problems": [],
    }


def test_not_found_is_a_page_with_the_navigation(app_client: TestClient) -> None:
    login(app_client, "reviewer")
    page = app_client.get("/no/such/page")
    assert page.status_code == 404 and "<nav" in page.text
    assert app_client.get("/api/v1/no-such").json()["detail"] == "Not Found"


def test_login_over_plain_http_on_an_intranet_address_says_why_it_fails(
    engine: Engine, clock: Clock
) -> None:
    app = create_app(Settings(web=WebSettings()), engine, clock=clock)
    for base, warned in [
        ("http://callbot.bank.internal:8000", True),
        ("https://callbot.bank.internal", False),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
    ]:
        page = TestClient(app, base_url=base).get("/login")
        assert page.status_code == 200
        assert ('id="plain-http"' in page.text) is warned, base
        if warned:
            assert "BOT_WEB__SECURE_COOKIES=false" in page.text
    relaxed = create_app(Settings(web=WebSettings(secure_cookies=False)), engine, clock=clock)
    page = TestClient(relaxed, base_url="http://callbot.bank.internal:8000").get("/login")
    assert 'id="plain-http"' not in page.text


def test_bot_web_says_where_it_listens_and_warns_on_plain_http() -> None:
    from bot.cli.web_cmd import start_lines

    (only,) = start_lines("127.0.0.1", 8000, secure_cookies=True)
    assert only.startswith("dashboard on http://127.0.0.1:8000/")
    url, warning = start_lines("0.0.0.0", 8080, secure_cookies=True)
    assert "http://0.0.0.0:8080/" in url and "TLS proxy" in warning
    _, relaxed = start_lines("10.1.2.3", 8080, secure_cookies=False)
    assert "unencrypted" in relaxed
    assert start_lines("::1", 8000, secure_cookies=True)[0].startswith("dashboard on http://[::1]")
