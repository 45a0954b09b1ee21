"""The call list's search and sort: an account number's start, a phone number (its last
digits, or whole with +86), a name; LIKE wildcards are literal; every order pages
without overlap; the page speaks Chinese with labels and masks phone numbers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.store.models import AccountRow, CallRow
from tests.web.conftest import login
from tests.web.factories import populate


def found(client: TestClient, **params: str) -> list[dict[str, object]]:
    r = client.get("/api/v1/calls", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


@pytest.fixture
def listed(app_client: TestClient, engine: Engine) -> tuple[TestClient, list[AccountRow]]:
    populate(engine)
    login(app_client, "supervisor")
    with Session(engine) as s:
        accounts = list(s.exec(select(AccountRow).order_by(col(AccountRow.id))).all())
    return app_client, accounts


def test_search_by_phone_account_and_name(listed: tuple[TestClient, list[AccountRow]]) -> None:
    client, accounts = listed
    holder = accounts[3]
    last4 = holder.phone_e164[-4:]
    by_last4 = found(client, q=last4)
    assert by_last4 and all(str(r["phone"]).endswith(last4) for r in by_last4)
    national = holder.phone_e164.removeprefix("+86")
    for q in (national, holder.phone_e164, f"{national[:3]} {national[3:7]} {national[7:]}"):
        hits = found(client, q=q)
        assert hits and {r["phone"] for r in hits} == {by_last4[0]["phone"]}, q
    sharing = [a for a in accounts if a.account_id.startswith(holder.account_id[:10])]
    assert len(found(client, q=holder.account_id[:10])) == len(sharing) > 1
    assert len(found(client, q=holder.account_id)) == 1  # the whole number: that account
    surname = holder.name[0]
    by_name = found(client, q=surname)
    assert by_name and all(surname in str(r["name"]) for r in by_name)
    assert found(client, q=holder.name) and all(
        r["name"] == holder.name for r in found(client, q=holder.name)
    )
    assert found(client, q="%") == [] and found(client, q="_") == []  # literal, not wildcards
    assert found(client, q="nobody-like-this") == []


def test_sort_orders_and_their_pages(listed: tuple[TestClient, list[AccountRow]]) -> None:
    client, _ = listed
    scores = [r["risk_score"] for r in found(client, sort="score")]
    known = [s for s in scores if s is not None]
    assert known == sorted(known, reverse=True) and scores[: len(known)] == known  # nulls last
    newest = [r["id"] for r in found(client)]
    assert [r["id"] for r in found(client, sort="oldest")] == list(reversed(newest))
    lengths = [r["duration_s"] for r in found(client, sort="length") if r["duration_s"] is not None]
    assert lengths == sorted(lengths, reverse=True)
    r = client.get("/api/v1/calls", params={"sort": "random"})
    assert r.status_code == 400 and "sort" in r.json()["detail"]
    assert client.get("/api/v1/calls", params={"q": "x" * 61}).status_code == 400


def test_the_page_is_chinese_with_labels_and_masked(
    listed: tuple[TestClient, list[AccountRow]], engine: Engine
) -> None:
    client, accounts = listed
    page = client.get("/calls", params={"sort": "score"}).text
    assert "搜索通话" in page and "风险分" in page and "已完成" in page
    assert ">completed<" not in page  # values are shown by their labels
    assert not re.search(r"1\d{10}", page)  # phone numbers masked
    assert 'data-sort="score"' in page and 'class="sort current"' in page
    with Session(engine) as s:
        assert s.exec(select(CallRow)).first() is not None
    english = client.get("/calls", params={"lang": "en", "q": accounts[0].phone_e164[-4:]}).text
    assert ("Search calls" in english and "Completed" in english) or "No calls match." in english
