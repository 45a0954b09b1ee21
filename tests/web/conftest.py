"""Dashboard test fixtures: the real app on a real database (SQLite and PostgreSQL),
driven over HTTP by Starlette's test client (https, so Secure cookies flow)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.settings import Settings
from bot.web.app import create_app
from bot.web.config import WebSettings
from bot.web.security import create_user

PASSWORD = "correct horse battery staple"
ROLES = ("reviewer", "compliance", "supervisor", "admin")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(engine: Engine) -> dict[str, int]:
    """One user per role, named after it (plus a second compliance officer)."""
    ids = {}
    with Session(engine) as s:
        for name, role in [*((r, r) for r in ROLES), ("compliance2", "compliance")]:
            ids[name] = create_user(s, name, PASSWORD, role).id or 0
        s.commit()
    return ids


@pytest.fixture
def app_client(engine: Engine, clock: Clock, users: dict[str, int]) -> Iterator[TestClient]:
    # monitor_fresh_s=0: the tests change calls between views (the sharing has its own test)
    settings = Settings(web=WebSettings(lockout_after=3, lockout_minutes=10, monitor_fresh_s=0))
    app = create_app(settings, engine, clock=clock)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the API; returns the CSRF token for unsafe requests."""
    r = client.post("/api/v1/session", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["csrf_token"]
    return token
