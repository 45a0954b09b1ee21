"""Lock-out under concurrency, and no user enumeration: on SQLite and PostgreSQL.

A password check is counted when argon2 verifies against a real user's hash (the
timing-equaliser hash for unknown and locked users is not a check of anyone's password).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.store.models import AuditEventRow, UserRow
from bot.web import security
from bot.web.config import WebSettings
from tests.web.conftest import PASSWORD, Clock

ATTEMPTS = 30


class CountingHasher:
    """Stands in for the module's argon2 hasher: cheap parameters (the users a test
    creates after it is installed get cheap hashes), a record of what each verification
    was against, and a short hold in each check of a real hash, so that concurrent
    attempts overlap as much as they can. The timing-equaliser hash is not verified."""

    def __init__(self) -> None:
        self.inner = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        self.seen: list[str] = []
        self._lock = threading.Lock()

    @property
    def checks(self) -> int:
        return self.seen.count("user")

    def verify(self, stored: str, password: str) -> bool:
        dummy = stored == security._DUMMY_HASH
        with self._lock:
            self.seen.append("dummy" if dummy else "user")
        if dummy:
            return False
        time.sleep(0.02)
        result: bool = self.inner.verify(stored, password)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingHasher]:
    """Take it before ``app_client``, so that the users are created with it."""
    counting = CountingHasher()
    monkeypatch.setattr(security, "_hasher", counting)
    yield counting


def _api_attempt(client: TestClient, username: str, password: str) -> tuple[int, Any]:
    r = client.post("/api/v1/session", json={"username": username, "password": password})
    return r.status_code, r.json()


def _concurrently(fn: Any, n: int = ATTEMPTS) -> list[Any]:
    barrier = threading.Barrier(n)

    def one(_: int) -> Any:
        barrier.wait(timeout=60)
        return fn()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_wrong_passwords_never_exceed_the_limit(
    hasher: CountingHasher, app_client: TestClient, engine: Engine
) -> None:
    results = _concurrently(lambda: _api_attempt(app_client, "reviewer", "wrong password!!"))
    assert all(status == 401 for status, _ in results)
    assert hasher.checks == 3  # app_client locks after 3
    with Session(engine) as s:
        user = s.exec(select(UserRow).where(UserRow.username == "reviewer")).one()
        assert user.locked_until is not None
        reasons = [e.detail["reason"] for e in s.exec(select(AuditEventRow))]
    assert reasons.count("wrong password") + reasons.count("wrong password, now locked") == 3
    assert reasons.count("locked") == ATTEMPTS - 3
    # while locked, even the right password is refused without being checked
    assert _api_attempt(app_client, "reviewer", PASSWORD)[0] == 401
    assert hasher.checks == 3


def test_the_service_counts_atomically(hasher: CountingHasher, engine: Engine) -> None:
    with Session(engine) as s:
        security.create_user(s, "lin", PASSWORD, "reviewer")
        s.commit()
    cfg = WebSettings(lockout_after=5, lockout_minutes=15)
    now = Clock().now

    def attempt() -> str:
        try:
            security.authenticate(engine, "lin", "wrong password!!", now, cfg)
        except security.LoginError as exc:
            return exc.reason
        return "signed in"

    reasons = _concurrently(attempt)
    assert hasher.checks == 5
    assert reasons.count("locked") == ATTEMPTS - 5
    assert reasons.count("wrong password, now locked") == 1
    # the lock expires: five more checks, then locked again
    later = now + dt.timedelta(minutes=16)
    reasons = [_attempt_at(engine, "lin", "wrong password!!", later, cfg) for _ in range(7)]
    assert hasher.checks == 10 and reasons[-2:] == ["locked", "locked"]
    assert _attempt_at(engine, "lin", PASSWORD, later, cfg) == "locked"


def _attempt_at(
    engine: Engine, name: str, password: str, now: dt.datetime, cfg: WebSettings
) -> str:
    try:
        security.authenticate(engine, name, password, now, cfg)
    except security.LoginError as exc:
        return exc.reason
    return "signed in"


def test_a_right_password_before_the_limit_resets_the_count(
    hasher: CountingHasher, engine: Engine
) -> None:
    with Session(engine) as s:
        security.create_user(s, "lin", PASSWORD, "reviewer")
        s.commit()
    cfg = WebSettings(lockout_after=3)
    now = Clock().now
    for _ in range(2):
        assert _attempt_at(engine, "lin", "wrong password!!", now, cfg) == "wrong password"
    assert _attempt_at(engine, "lin", PASSWORD, now, cfg) == "signed in"
    for _ in range(2):
        assert _attempt_at(engine, "lin", "wrong password!!", now, cfg) == "wrong password"
    with Session(engine) as s:
        user = s.exec(select(UserRow)).one()
        assert user.failed_logins == 2 and user.locked_until is None


def _responses(client: TestClient, username: str, password: str) -> tuple[Any, ...]:
    api = client.post("/api/v1/session", json={"username": username, "password": password})
    page = client.get("/login")
    token = client.cookies.get("bot_login_csrf") or ""
    form = client.post(
        "/login",
        data={"username": username, "password": password, "login_csrf": token, "next": "/"},
    )
    # the page echoes the name typed; blank it to compare the rest
    body = form.text.replace(f'value="{username}"', 'value=""').replace(token, "TOKEN")
    assert page.status_code == 200
    return api.status_code, api.json(), form.status_code, body


def test_locked_unknown_disabled_and_wrong_look_the_same(
    hasher: CountingHasher, app_client: TestClient, engine: Engine
) -> None:
    for _ in range(3):
        _api_attempt(app_client, "compliance", "wrong password!!")
    with Session(engine) as s:
        user = s.exec(select(UserRow).where(UserRow.username == "supervisor")).one()
        user.disabled = True
        s.add(user)
        s.commit()
    wrong = _responses(app_client, "reviewer", "wrong password!!")
    locked = _responses(app_client, "compliance", PASSWORD)  # locked: even the right one
    unknown = _responses(app_client, "nobody", PASSWORD)
    disabled = _responses(app_client, "supervisor", PASSWORD)
    assert wrong == locked == unknown == disabled
    assert wrong[0] == wrong[2] == 401 and wrong[1] == {"detail": "user name or password is wrong"}


def test_unknown_and_locked_users_still_pay_for_a_hash(
    hasher: CountingHasher, app_client: TestClient
) -> None:
    """Timing: every refusal runs argon2 once, whoever the user is."""
    for name in ["nobody", "reviewer", "reviewer", "reviewer", "reviewer", "", "x" * 500]:
        _api_attempt(app_client, name, "wrong password!!")
    assert hasher.seen == ["dummy", "user", "user", "user", "dummy", "dummy", "dummy"]


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    assert security._DUMMY_HASH.split("$")[:4] == security._hasher.hash("x").split("$")[:4]
