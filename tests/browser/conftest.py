"""Browser tests: the real dashboard served by uvicorn on 127.0.0.1, a real database with
realistic calls, and Debian's headless Chromium driven by Playwright (Playwright's own
browser download is not used: ``BOT_CHROMIUM`` or /usr/bin/chromium)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.settings import Settings
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from bot.web.app import create_app
from bot.web.config import WebSettings
from bot.web.security import create_user
from tests.conftest import free_port
from tests.web.factories import populate

PASSWORD = "correct horse battery staple"
SCREENSHOTS_ENV = "BOT_SCREENSHOTS"  # a folder: the browser tests save page screenshots there


def chromium_path() -> str:
    """Debian's Chromium (scripts/setup.sh installs it). A missing browser fails the run:
    set BOT_SKIP_BROWSER=1 to skip the browser tests on a machine that cannot have one."""
    found = os.environ.get("BOT_CHROMIUM") or shutil.which("chromium") or ""
    if not found:
        if os.environ.get("BOT_SKIP_BROWSER") == "1":
            pytest.skip("BOT_SKIP_BROWSER=1 and no chromium on this machine")
        pytest.fail("no chromium on this machine: apt-get install chromium (or set BOT_CHROMIUM)")
    return found


@dataclass(frozen=True)
class Live:
    """The running dashboard and the database behind it."""

    url: str
    engine: Engine


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The dashboard on a free local port, over a populated SQLite database."""
    data = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{data / 'bot.db'}"
    upgrade(url)
    engine = make_engine(url)
    populate(engine)
    with Session(engine) as s:
        for name, role in [
            ("reviewer", "reviewer"),
            ("compliance", "compliance"),
            ("compliance2", "compliance"),
            ("supervisor", "supervisor"),
            ("admin", "admin"),
        ]:
            create_user(s, name, PASSWORD, role)
        s.commit()
    settings = Settings(data_dir=data, web=WebSettings())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.05)
    yield Live(f"http://127.0.0.1:{port}", engine)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(live: Live) -> str:
    return live.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium under Playwright's sync API, per test module: while it runs, Playwright
    holds an asyncio loop in this thread, which the async tests that may follow in the
    same worker need; the module boundary hands it back."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    p = context.new_page()
    yield p
    context.close()


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def screenshot(page: Any, name: str) -> None:
    """Screenshots of the main pages, saved only when BOT_SCREENSHOTS names a folder
    (``BOT_SCREENSHOTS=docs/screenshots pytest tests/browser`` refreshes those in docs/)."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
