"""API tokens: created by an admin (API and CLI), used as ``Authorization: Bearer`` on the
JSON API only, refused once revoked or expired, audited, and never written down."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine, select
from typer.testing import CliRunner

from bot.cli.app import app as cli
from bot.settings import get_settings
from bot.store.models import ApiTokenRow, AuditEventRow
from bot.web.tokens import secret_hash
from tests.web.conftest import Clock, login


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def issue(client: TestClient, name: str, role: str, **extra: object) -> dict[str, object]:
    """A token created through the API by the admin (signed in on ``client``)."""
    csrf = login(client, "admin")
    r = client.post(
        "/api/v1/tokens", json={"name": name, "role": role, **extra}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 201, r.text
    client.cookies.clear()  # what follows uses the token alone
    body: dict[str, object] = r.json()
    return body


def audit_text(engine: Engine) -> str:
    with Session(engine) as s:
        return repr(
            [(e.actor, e.action, e.object_id, e.detail) for e in s.exec(select(AuditEventRow))]
        )


def test_a_token_is_created_used_and_revoked(
    app_client: TestClient, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    made = issue(app_client, "crm-sync", "supervisor")
    secret = str(made["secret"])
    assert secret.startswith("cbt_") and len(secret) > 40
    assert made["state"] == "live" and secret.startswith(str(made["prefix"]))
    with Session(engine) as s:
        row = s.exec(select(ApiTokenRow)).one()
        assert row.secret_hash == secret_hash(secret) and secret not in repr(row)

    # used: acts with its role, no cookie and no CSRF token needed
    r = app_client.get("/api/v1/session", headers=bearer(secret))
    assert r.status_code == 200 and r.json()["username"] == "token:crm-sync"
    assert r.json()["role"] == "supervisor"
    assert app_client.get("/api/v1/monitor", headers=bearer(secret)).status_code == 200

    # revoked: refused at once, in the API's refusal model
    csrf = login(app_client, "admin")
    r = app_client.delete(f"/api/v1/tokens/{made['id']}", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    app_client.cookies.clear()
    r = app_client.get("/api/v1/monitor", headers=bearer(secret))
    assert r.status_code == 401
    assert set(r.json()) == {"detail", "problems"} and "token" in r.json()["detail"]

    actions = audit_text(engine)
    assert "'token_created'" in actions and "'token_revoked'" in actions
    assert "'token_refused'" in actions and "revoked token" in actions
    assert secret not in actions and secret[12:] not in caplog.text
    assert secret not in app_client.get("/api/v1/tokens", headers=bearer(secret)).text


def test_unknown_and_expired_tokens_are_refused(
    app_client: TestClient, engine: Engine, clock: Clock
) -> None:
    made = issue(app_client, "short-lived", "reviewer", expires_in_days=1)
    secret = str(made["secret"])
    assert app_client.get("/api/v1/calls", headers=bearer(secret)).status_code == 200
    clock.advance(days=1, seconds=1)
    assert app_client.get("/api/v1/calls", headers=bearer(secret)).status_code == 401
    unknown = "cbt_" + "x" * 43
    r = app_client.get("/api/v1/calls", headers=bearer(unknown))
    assert r.status_code == 401 and r.json()["problems"] == []
    text = audit_text(engine)
    assert "expired token" in text and "unknown token" in text
    assert unknown not in text and "cbt_xxxxxxxx" in text  # only the prefix is kept
    # a bearer token wins over a cookie: a bad one is refused, not ignored
    login(app_client, "admin")
    assert app_client.get("/api/v1/calls", headers=bearer(unknown)).status_code == 401


def test_a_token_holds_its_role_and_no_more(app_client: TestClient, engine: Engine) -> None:
    reviewer = str(issue(app_client, "reader", "reviewer")["secret"])
    r = app_client.get("/api/v1/monitor", headers=bearer(reviewer))
    assert r.status_code == 403 and "view_monitor" in r.json()["detail"]
    r = app_client.post(
        "/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=bearer(reviewer)
    )
    assert r.status_code == 403
    # what needs a person is refused to any token, an admin's included
    admin = str(issue(app_client, "ops", "admin")["secret"])
    assert app_client.get("/api/v1/users", headers=bearer(admin)).status_code == 200
    # an unsafe request with a token needs no CSRF token
    r = app_client.post(
        "/api/v1/tokens", json={"name": "y", "role": "reviewer"}, headers=bearer(admin)
    )
    assert r.status_code == 201, r.text
    r = app_client.post("/api/v1/review/1/claim", headers=bearer(admin))
    assert r.status_code == 403 and "review" in r.json()["detail"]
    r = app_client.post(
        "/api/v1/calls/1/reveal", json={"reason": "fraud case"}, headers=bearer(admin)
    )
    assert r.status_code == 403 and "reveal_pii" in r.json()["detail"]
    text = audit_text(engine)
    assert "'token:reader', 'access_denied'" in text and "'token:ops', 'access_denied'" in text


def test_a_token_opens_no_page(app_client: TestClient) -> None:
    secret = str(issue(app_client, "pages", "admin")["secret"])
    for page in ("/", "/calls", "/monitor"):
        r = app_client.get(page, headers=bearer(secret))
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), page


def test_names_are_checked_and_one_live_token_per_name(app_client: TestClient) -> None:
    issue(app_client, "nightly", "supervisor")
    csrf = login(app_client, "admin")
    headers = {"X-CSRF-Token": csrf}
    r = app_client.post(
        "/api/v1/tokens", json={"name": "nightly", "role": "admin"}, headers=headers
    )
    assert r.status_code == 409 and "revoke it first" in r.json()["detail"]
    r = app_client.post("/api/v1/tokens", json={"name": "a b", "role": "admin"}, headers=headers)
    assert r.status_code == 409
    r = app_client.post("/api/v1/tokens", json={"name": "ok", "role": "boss"}, headers=headers)
    assert r.status_code == 422
    listed = app_client.get("/api/v1/tokens").json()
    assert [t["name"] for t in listed] == ["nightly"] and "secret" not in listed[0]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_the_cli_creates_lists_and_revokes(data_dir: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["users", "token", "create", "etl", "--role", "supervisor"])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip()
    assert secret.startswith("cbt_") and "\n" not in secret  # alone on stdout
    engine = create_engine(f"sqlite:///{data_dir / 'bot.db'}")
    with Session(engine) as s:
        assert s.exec(select(ApiTokenRow)).one().secret_hash == secret_hash(secret)
    again = runner.invoke(cli, ["users", "token", "create", "etl", "--role", "admin"])
    assert again.exit_code == 2 and "revoke it first" in again.output
    listing = runner.invoke(cli, ["users", "token", "list"])
    assert "etl" in listing.output and "live" in listing.output and secret not in listing.output
    assert runner.invoke(cli, ["users", "token", "revoke", "etl"]).exit_code == 0
    assert "revoked" in runner.invoke(cli, ["users", "token", "list"]).output
    assert runner.invoke(cli, ["users", "token", "revoke", "etl"]).exit_code == 2
    with Session(engine) as s:
        events = [(e.action, repr(e.detail)) for e in s.exec(select(AuditEventRow))]
    assert [a for a, _ in events] == ["token_created", "token_revoked"]
    assert all(secret not in d for _, d in events)
