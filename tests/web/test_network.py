"""The network pages and API on both engines: a supervisor sees an account's neighbours
(their bands, the shared phone masked, who holds what) and the groups, largest first;
reviewers and compliance officers are refused; every account view is audited; no number
in clear in any answer."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.store.links import LinkKey, refresh_account
from bot.store.models import AccountRow, AuditEventRow, CallRow

from .conftest import login

KEY = LinkKey(b"w" * 32)
SHARED_PHONE = "+8613912345678"


def _account(s: Session, n: int, **over: object) -> AccountRow:
    fields: dict[str, object] = {
        "account_id": f"62220000000000{n:02d}", "name": f"客户{n}",
        "phone": f"+86138000000{n:02d}", "phone_e164": f"+86138000000{n:02d}",
        "scenario": "suspicious_txn", "model_score": 0.8, **over,
    }  # fmt: skip
    row = AccountRow(**fields)  # type: ignore[arg-type]
    s.add(row)
    s.flush()
    refresh_account(s, row, KEY)
    return row


def _network(engine: Engine) -> dict[str, int]:
    """A and B share a phone; C, D and E share a counterparty; F stands alone."""
    with Session(engine) as s:
        rows = {
            "a": _account(s, 1, phone_e164=SHARED_PHONE),
            "b": _account(s, 2, phone_e164=SHARED_PHONE),
            "c": _account(s, 3, txn_counterparty="钱多多"),
            "d": _account(s, 4, txn_counterparty="钱多多"),
            "e": _account(s, 5, txn_counterparty="钱多多"),
            "f": _account(s, 6, txn_counterparty="朋友"),
        }
        s.add(
            CallRow(
                account_pk=rows["b"].id or 0, outcome="completed", risk_band="high",
                disposition="suspend_non_counter",
            )
        )  # fmt: skip
        s.commit()
        return {k: v.id or 0 for k, v in rows.items()}


def _no_clear_numbers(text: str) -> None:
    assert not re.search(r"1[3-9]\d{9}", text), text
    assert not re.search(r"\d{13,19}", text), text


def test_a_supervisor_sees_an_accounts_neighbours(app_client: TestClient, engine: Engine) -> None:
    pks = _network(engine)
    login(app_client, "supervisor")
    r = app_client.get(f"/api/v1/accounts/{pks['a']}/network")
    assert r.status_code == 200, r.text
    body = r.json()
    _no_clear_numbers(r.text)
    assert body["centre"] == f"a{pks['a']}" and body["group_size"] == 2
    by_pk = {a["pk"]: a for a in body["accounts"]}
    assert set(by_pk) == {pks["a"], pks["b"]} and by_pk[pks["b"]]["hops"] == 1
    assert by_pk[pks["b"]]["band"] == "high"
    assert by_pk[pks["b"]]["disposition"] == "suspend_non_counter"
    assert by_pk[pks["a"]]["account_id"] == "************0001"
    phone = next(e for e in body["entities"] if e["kind"] == "phone" and e["accounts"] == 2)
    assert phone["shown"] == "139****5678"
    holders = {e["account"] for e in body["edges"] if e["entity"] == phone["id"]}
    assert holders == {f"a{pks['a']}", f"a{pks['b']}"}
    with Session(engine) as s:
        events = s.exec(select(AuditEventRow).where(AuditEventRow.action == "network_viewed")).all()
    assert [(e.actor, e.object_id, e.detail["via"]) for e in events] == [
        ("supervisor", str(pks["a"]), "api")
    ]

    page = app_client.get(f"/accounts/{pks['a']}/network")
    assert page.status_code == 200
    assert 'id="network" data-network=' in page.text and "139****5678" in page.text
    assert "/static/network.js" in page.text and 'href="/network"' in page.text
    _no_clear_numbers(page.text)


def test_groups_largest_first_without_stop_words(app_client: TestClient, engine: Engine) -> None:
    pks = _network(engine)
    login(app_client, "admin")
    r = app_client.get("/api/v1/network/groups")
    assert r.status_code == 200, r.text
    groups = r.json()["groups"]
    assert [g["accounts"] for g in groups] == [3, 2]
    assert groups[0]["hubs"][0] == {"kind": "person", "shown": "钱多多", "accounts": 3}
    assert {m["pk"] for m in groups[1]["members"]} == {pks["a"], pks["b"]}
    assert groups[1]["bands"] == {"high": 1, "none": 1}
    assert "朋友" in r.json()["stop_names"]
    assert app_client.get("/api/v1/network/groups?limit=1").json()["groups"][0]["accounts"] == 3
    page = app_client.get("/network")
    assert page.status_code == 200 and "钱多多" in page.text and "138****5678" not in page.text
    assert f'href="/accounts/{pks["c"]}/network"' in page.text
    _no_clear_numbers(page.text)


def test_after_new_links_the_groups_are_served_while_they_are_recomputed(
    app_client: TestClient, engine: Engine
) -> None:
    """During a live campaign every call adds links: the next view gets the list it had
    (no second of waiting) while one background thread computes the new one."""
    _network(engine)
    login(app_client, "admin")

    def sizes() -> list[int]:
        found = app_client.get("/api/v1/network/groups").json()["groups"]
        return [g["accounts"] for g in found]

    assert sizes() == [3, 2]
    with Session(engine) as s:  # a fourth holder of the counterparty
        _account(s, 7, txn_counterparty="钱多多")
        s.commit()
    assert sizes() == [3, 2]  # served at once, as computed before the link
    app_client.app.state.groups_cache.wait()  # type: ignore[attr-defined]
    assert sizes() == [4, 2]


def test_other_roles_are_refused_and_unknown_accounts_are_404(
    app_client: TestClient, engine: Engine
) -> None:
    pks = _network(engine)
    for role in ("reviewer", "compliance"):
        login(app_client, role)
        for path in ("/network", f"/accounts/{pks['a']}/network", "/api/v1/network/groups",
                     f"/api/v1/accounts/{pks['a']}/network"):  # fmt: skip
            assert app_client.get(path).status_code == 403, (role, path)
        assert 'href="/network"' not in app_client.get("/calls").text
    login(app_client, "supervisor")
    assert app_client.get("/api/v1/accounts/99999/network").status_code == 404
    assert app_client.get("/accounts/99999/network").status_code == 404
    assert app_client.get("/api/v1/accounts/0/network").status_code == 422


def test_the_workspace_and_network_pages_speak_chinese_by_default_and_english_on_request(
    app_client: TestClient, engine: Engine
) -> None:
    pks = _network(engine)
    login(app_client, "admin")  # both the workspace and the network

    groups = app_client.get("/network").text
    assert '<html lang="zh-CN">' in groups and "关系图谱 · 关联群组" in groups
    assert "人名: 钱多多" in groups and "枢纽" in groups and "未评级 1" in groups
    account = app_client.get(f"/accounts/{pks['a']}/network").text
    assert "暂停非柜面交易" in account and "suspend_non_counter</td>" not in account
    assert ">高<" in account and "手机号" in account and "通话中提及" in account
    words = re.search(
        r'<script type="application/json" id="network-words">(.*?)</script>', account, re.S
    )
    assert words and json.loads(words[1])["dispositions"]["suspend_non_counter"] == "暂停非柜面交易"
    workspace = app_client.get("/workspace").text
    assert "合规话术工作台" in workspace and "机器人运行的话术来源" in workspace
    assert "话术模块" in workspace and "Compliance workspace" not in workspace

    english = app_client.get("/network?lang=en").text
    assert '<html lang="en">' in english and "Network groups" in english
    assert "Person: 钱多多" in english and "mule hub" in english and "Not scored 1" in english
    workspace = app_client.get("/workspace").text  # the choice is remembered
    assert "Compliance workspace" in workspace and "Which source the bot runs" in workspace
    assert "合规话术工作台" not in workspace
    account = app_client.get(f"/accounts/{pks['a']}/network").text
    assert "Suspend non-counter transactions" in account and "named in a call" in account
