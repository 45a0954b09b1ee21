"""Signing in and out, sessions, lock-out, CSRF and role checks, on both databases."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.store.models import AuditEventRow, UserRow, WebSessionRow
from bot.web.roles import PERMISSIONS, Permission, Role, allowed
from bot.web.security import hash_password
from tests.web.conftest import PASSWORD, Clock, login


def form_token(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


def audit_actions(engine: Engine) -> list[tuple[str, str]]:
    with Session(engine) as s:
        return [
            (e.actor, e.action) for e in s.exec(select(AuditEventRow).order_by(AuditEventRow.id))
        ]


def page_login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    page = client.get("/login?next=/calls")
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "login_csrf": form_token(page.text, "login_csrf"),
            "next": "/calls",
        },
    ).headers.get("location", "")


def test_the_login_page_signs_in_and_out(app_client: TestClient, engine: Engine) -> None:
    assert app_client.get("/").status_code == 303  # to the login page
    assert page_login(app_client, "reviewer") == "/calls"
    cookie = app_client.cookies.get("bot_session")
    assert cookie
    home = app_client.get("/")
    assert home.status_code == 200 and "reviewer" in home.text
    with Session(engine) as s:
        stored = s.exec(select(WebSessionRow)).one()
        assert stored.token_hash != cookie and len(stored.token_hash) == 64  # only a hash
    out = app_client.post("/logout", data={"csrf_token": form_token(home.text, "csrf_token")})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert app_client.get("/").status_code == 303
    assert audit_actions(engine)[-2:] == [("reviewer", "login"), ("reviewer", "logout")]


def test_session_cookie_flags(app_client: TestClient) -> None:
    r = app_client.post("/api/v1/session", json={"username": "admin", "password": PASSWORD})
    header = r.headers["set-cookie"].lower()
    assert "httponly" in header and "secure" in header and "samesite=lax" in header


def test_login_form_needs_its_csrf_token(app_client: TestClient) -> None:
    app_client.get("/login")
    r = app_client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "login_csrf": "forged"}
    )
    assert r.status_code == 403 and "bot_session" not in r.cookies


def test_wrong_password_and_unknown_user_look_the_same(
    app_client: TestClient, engine: Engine
) -> None:
    a = app_client.post(
        "/api/v1/session", json={"username": "admin", "password": "wrong password!"}
    )
    b = app_client.post(
        "/api/v1/session", json={"username": "nobody", "password": "wrong password!"}
    )
    assert a.status_code == b.status_code == 401 and a.json() == b.json()
    assert ("admin", "login_failed") in audit_actions(engine)


def test_lock_out_after_repeated_failures(
    app_client: TestClient, clock: Clock, engine: Engine
) -> None:
    for _ in range(3):
        r = app_client.post(
            "/api/v1/session", json={"username": "reviewer", "password": "bad bad bad!"}
        )
        assert r.status_code == 401
    locked = app_client.post("/api/v1/session", json={"username": "reviewer", "password": PASSWORD})
    assert locked.status_code == 401  # the same answer as a wrong password: see test_login_lockout
    assert locked.json() == {"detail": "user name or password is wrong"}
    clock.advance(minutes=11)
    assert login(app_client, "reviewer")
    with Session(engine) as s:
        user = s.exec(select(UserRow).where(UserRow.username == "reviewer")).one()
        assert user.failed_logins == 0 and user.locked_until is None


def test_sessions_expire_when_idle(app_client: TestClient, clock: Clock) -> None:
    login(app_client, "reviewer")
    clock.advance(minutes=20)
    assert app_client.get("/api/v1/session").status_code == 200  # activity slides the expiry
    clock.advance(minutes=29)
    assert app_client.get("/api/v1/session").status_code == 200
    clock.advance(minutes=31)
    assert app_client.get("/api/v1/session").status_code == 401


def test_unsafe_api_calls_need_the_csrf_header(app_client: TestClient) -> None:
    token = login(app_client, "reviewer")
    assert app_client.delete("/api/v1/session").status_code == 403
    assert app_client.delete("/api/v1/session", headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert app_client.delete("/api/v1/session", headers={"X-CSRF-Token": token}).status_code == 204
    assert app_client.get("/api/v1/session").status_code == 401


def test_disabled_users_lose_their_sessions(app_client: TestClient, engine: Engine) -> None:
    login(app_client, "reviewer")
    with Session(engine) as s:
        user = s.exec(select(UserRow).where(UserRow.username == "reviewer")).one()
        user.disabled = True
        s.add(user)
        s.commit()
    assert app_client.get("/api/v1/session").status_code == 401


def test_open_redirects_are_refused(app_client: TestClient) -> None:
    page = app_client.get("/login")
    r = app_client.post(
        "/login",
        data={
            "username": "admin",
            "password": PASSWORD,
            "login_csrf": form_token(page.text, "login_csrf"),
            "next": "//evil.example/steal",
        },
    )
    assert r.headers["location"] == "/"


@pytest.mark.parametrize("role", list(Role))
def test_every_role_has_a_permission_set(role: Role) -> None:
    assert Permission.VIEW_CALLS in PERMISSIONS[role]
    assert allowed(role.value, Permission.MANAGE_USERS) is (role is Role.ADMIN)
    assert not allowed("intruder", Permission.VIEW_CALLS)


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        hash_password("short")
