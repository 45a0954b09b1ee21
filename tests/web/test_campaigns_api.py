"""The campaign API driven by an API token, as a bank's scheduler would: create a campaign,
upload its accounts (a bad line comes back with its line number), start it, let a worker
call everyone, read the status; a revoked token can no longer touch it."""

from __future__ import annotations

import csv
import datetime as dt
import io

import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.campaign.worker import SimulatedGateway, Worker
from bot.store.models import AuditEventRow, DncEntryRow, utcnow
from tests.conftest import SHARED
from tests.web.conftest import login
from tests.web.factories import investigator
from tests.web.test_api_tokens import bearer, issue

COLUMNS = ["account_id", "name", "phone", "scenario", "model_score", "card_last4", "branch"]


def personas(n: int) -> list[dict[str, object]]:
    found = [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((SHARED / "personas").glob("*.yaml"))
    ]
    return found[:n]


def accounts_csv(people: list[dict[str, object]], bad_at: int) -> bytes:
    """The people's accounts as CSV, with a record whose phone is no number inserted as
    the ``bad_at``-th record (file line ``bad_at + 1``, after the header)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    rows = [p["account"] for p in people]
    bad = {**rows[0], "account_id": "6225889999999999", "phone": "not a phone"}
    rows.insert(bad_at - 1, bad)
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


def next_morning() -> dt.datetime:
    """10:00 in Shanghai after the accounts were loaded (their first attempt is due then)."""
    day = (utcnow() + dt.timedelta(days=1)).date()
    return dt.datetime.combine(day, dt.time(2, 0), tzinfo=dt.UTC)


def test_a_token_runs_a_campaign_end_to_end(app_client: TestClient, engine: Engine) -> None:
    token = bearer(str(issue(app_client, "scheduler", "supervisor")["secret"]))
    people = personas(3)

    r = app_client.post(
        "/api/v1/campaigns",
        json={"name": "api-run", "max_attempts": 1, "weekdays": [1, 2, 3, 4, 5, 6, 7]},
        headers=token,
    )
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["state"] == "draft" and campaign["max_attempts"] == 1
    cid = campaign["id"]

    upload = {"file": ("november.csv", accounts_csv(people, bad_at=2), "text/csv")}
    r = app_client.post(f"/api/v1/campaigns/{cid}/accounts", files=upload, headers=token)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["read"] == 4 and report["loaded"] == 3 and report["rejected"] == 1
    assert [(e["line"], e["field"]) for e in report["rejects"]] == [(3, "phone")]
    assert report["items_created"] == 3

    r = app_client.post(f"/api/v1/campaigns/{cid}/start", headers=token)
    assert r.status_code == 200 and r.json()["state"] == "running"
    assert r.json()["items"] == {"queued": 3}

    answers = {p["account"]["account_id"]: p["answers"] for p in people}  # type: ignore[index]
    morning = next_morning()
    Worker(
        engine, investigator(), SimulatedGateway(answers), poll_s=0.01, clock=lambda: morning
    ).run(until_idle=True)

    r = app_client.get(f"/api/v1/campaigns/{cid}", headers=token)
    assert r.status_code == 200
    status = r.json()
    assert status["calls"] == 3 and status["items"] == {"done": 3}, status
    assert sum(status["outcomes"].values()) == 3 and status["dispositions"]
    listed = app_client.get("/api/v1/campaigns", headers=token).json()
    assert [c["name"] for c in listed] == ["api-run"]

    # revoked: the token can no longer start or read the campaign
    csrf = login(app_client, "admin")
    tokens = app_client.get("/api/v1/tokens").json()
    app_client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers={"X-CSRF-Token": csrf})
    app_client.cookies.clear()
    assert app_client.post(f"/api/v1/campaigns/{cid}/start", headers=token).status_code == 401
    assert app_client.get(f"/api/v1/campaigns/{cid}", headers=token).status_code == 401

    with Session(engine) as s:
        actions = [e.action for e in s.exec(select(AuditEventRow).order_by(AuditEventRow.id))]
    for action in ("campaign_created", "accounts_imported", "campaign_start", "token_refused"):
        assert action in actions


def test_life_cycle_refusals(app_client: TestClient) -> None:
    token = bearer(str(issue(app_client, "ops", "supervisor")["secret"]))
    cid = app_client.post("/api/v1/campaigns", json={"name": "c1"}, headers=token).json()["id"]
    again = app_client.post("/api/v1/campaigns", json={"name": "c1"}, headers=token)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    r = app_client.post(f"/api/v1/campaigns/{cid}/pause", headers=token)
    assert r.status_code == 409 and "in state draft" in r.json()["detail"]
    assert app_client.post(f"/api/v1/campaigns/{cid}/cancel", headers=token).json()["state"] == (
        "cancelled"
    )
    header = ",".join(COLUMNS).encode() + b"\n"
    upload = {"file": ("a.csv", header, "text/csv")}
    r = app_client.post(f"/api/v1/campaigns/{cid}/accounts", files=upload, headers=token)
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    assert app_client.get("/api/v1/campaigns/999", headers=token).status_code == 404
    bad = {"name": "c2", "window_start": "20:00", "window_end": "09:00"}
    assert app_client.post("/api/v1/campaigns", json=bad, headers=token).status_code == 422
    # an unreadable file: nothing written, a 400 saying why
    cid2 = app_client.post("/api/v1/campaigns", json={"name": "c3"}, headers=token).json()["id"]
    upload = {"file": ("a.csv", b"account_id,name\n1,x\n", "text/csv")}
    r = app_client.post(f"/api/v1/campaigns/{cid2}/accounts", files=upload, headers=token)
    assert r.status_code == 400 and "phone" in r.json()["detail"]
    upload = {"file": ("a.xlsx", b"PK\x03\x04", "application/octet-stream")}
    r = app_client.post(f"/api/v1/campaigns/{cid2}/accounts", files=upload, headers=token)
    assert r.status_code == 422


def test_roles_and_the_do_not_call_list(app_client: TestClient, engine: Engine) -> None:
    compliance = bearer(str(issue(app_client, "cmp", "compliance")["secret"]))
    r = app_client.post("/api/v1/campaigns", json={"name": "x"}, headers=compliance)
    assert r.status_code == 403 and "run_campaigns" in r.json()["detail"]
    token = bearer(str(issue(app_client, "ops", "supervisor")["secret"]))
    r = app_client.post(
        "/api/v1/dnc",
        json={"phone": "138 0000 9999", "reason": "asked on 13800009999"},
        headers=token,
    )
    assert r.status_code == 201 and r.json()["phone"] != "+8613800009999"
    assert "9999" in r.json()["phone"]
    again = app_client.post("/api/v1/dnc", json={"phone": "+8613800009999"}, headers=token)
    assert again.json()["id"] == r.json()["id"]
    assert app_client.post("/api/v1/dnc", json={"phone": "123"}, headers=token).status_code == 422
    page = app_client.get("/api/v1/dnc", headers=token).json()
    assert page["total"] == 1 and "13800009999" not in str(page)
    with Session(engine) as s:
        assert s.exec(select(DncEntryRow)).one().phone_e164 == "+8613800009999"
        detail = repr([e.detail for e in s.exec(select(AuditEventRow))])
    assert "13800009999" not in detail  # the reason is masked in the audit log


def test_admins_manage_users(app_client: TestClient) -> None:
    admin = bearer(str(issue(app_client, "idm", "admin")["secret"]))
    body = {"username": "Wang.Li", "password": "a quite long passphrase 7", "role": "reviewer"}
    r = app_client.post("/api/v1/users", json=body, headers=admin)
    assert r.status_code == 201 and r.json()["username"] == "wang.li", r.text
    assert app_client.post("/api/v1/users", json=body, headers=admin).status_code == 409
    weak = {**body, "username": "zhao", "password": "12345678"}
    assert app_client.post("/api/v1/users", json=weak, headers=admin).status_code == 422
    uid = r.json()["id"]
    r = app_client.post(f"/api/v1/users/{uid}/disable", headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    names = {
        u["username"]: u["disabled"] for u in app_client.get("/api/v1/users", headers=admin).json()
    }
    assert names["wang.li"] is True and names["admin"] is False
    supervisor = bearer(str(issue(app_client, "sup", "supervisor")["secret"]))
    assert app_client.get("/api/v1/users", headers=supervisor).status_code == 403
