"""The accounts' network on SQLite and PostgreSQL: calls through the real worker, recorder
and NLU link accounts whose callees name one phone (by a keyed hash, nothing in clear),
the account's own phone links holders, common words do not, groups rank by accounts,
and ``link_stored`` rebuilds the links of calls stored before (from sealed originals)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.campaign.worker import SimulatedGateway, Worker
from bot.store.links import (
    LINKS,
    LinkKey,
    group_of,
    groups,
    neighbourhood,
    normalise,
    process_link_key,
    refresh_account,
)
from bot.store.links_backfill import link_stored
from bot.store.models import AccountRow, EntityLinkRow
from bot.store.pii_crypto import process_keyring
from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign
from tests.store.pii_helpers import scan as scan_all
from tests.web.factories import investigator

PHONE = "13912345678"  # the friend both callees say holds their card


def _account(account_id: str, name: str, phone: str, counterparty: str) -> dict[str, Any]:
    return {
        "account_id": account_id, "name": name, "phone": phone, "phone_e164": phone,
        "card_last4": account_id[-4:], "scenario": "suspicious_txn", "model_score": 0.8,
        "branch": "shenzhen", "txn_amount": 49800.0, "txn_date": dt.date(2026, 11, 18),
        "txn_counterparty": counterparty,
    }  # fmt: skip


A = _account("900100201", "李娜", "+8613800000002", "王强")
B = _account("900100202", "张伟", "+8613800000003", "赵六")


def _answers(name: str) -> dict[str, str]:
    return {
        "identity": f"对，我是{name}。",
        "card_purpose": "当时开卡是想存点钱。",
        "fund_source": "是朋友的钱。",
        "card_custody": f"这张卡我借给朋友用了，他电话{PHONE}，他说帮他收一下货款。",
        "counterparty": "我不认识。",
        "occupation": "我现在没有工作。",
        "default": "嗯。",
    }


def _call_both(engine: Engine) -> dict[str, int]:
    """One call to each account; returns account pks by bank account id."""
    _, pks = make_campaign(engine, "net", accounts=[A, B], max_attempts=1)
    gateway = SimulatedGateway(
        {A["account_id"]: _answers(A["name"]), B["account_id"]: _answers(B["name"])}
    )
    stats = Worker(engine, investigator(), gateway, poll_s=0.01, clock=lambda: MONDAY_10_LOCAL).run(
        until_idle=True
    )
    assert stats.calls == 2 and stats.failed == 0
    return {A["account_id"]: pks[0], B["account_id"]: pks[1]}


def _links(engine: Engine) -> list[EntityLinkRow]:
    with Session(engine) as s:
        return list(s.exec(select(EntityLinkRow).order_by(EntityLinkRow.id)))  # type: ignore[arg-type]


def test_normalised_numbers_and_names() -> None:
    assert normalise("phone", "+86 139 1234 5678") == PHONE
    assert normalise("phone", "幺三九一二三四五六七八") == PHONE
    assert normalise("phone", "139****5678") is None  # masked: cannot link
    assert normalise("phone", "4008895588") is None  # a service number
    assert normalise("card", "6222 0210 0112 3456") == "6222021001123456"
    assert normalise("id_number", "11010519491231002x") == "11010519491231002X"
    assert normalise("person", " 王\u3000强 ") == "王强"
    assert normalise("person", "王") is None
    key = LinkKey(b"k" * 32)
    assert key.digest("phone", PHONE) != LinkKey(b"j" * 32).digest("phone", PHONE)
    assert key.digest("phone", PHONE) != key.digest("card", PHONE)


def test_a_phone_two_callees_name_links_their_accounts(engine: Engine, pii_key: str) -> None:
    pks = _call_both(engine)
    a, b = pks[A["account_id"]], pks[B["account_id"]]
    said = [r for r in _links(engine) if r.kind == "phone" and r.origin == "said"]
    assert {r.account_pk for r in said} == {a, b}
    assert len({r.link_key for r in said}) == 1  # one number, one key
    key = process_link_key()
    assert key is not None and said[0].link_key == key.digest("phone", PHONE)
    assert said[0].shown == "139****5678" and said[0].key_id == key.key_id
    assert all(r.call_id is not None and r.entity_id is not None for r in said)
    problems, _ = scan_all(engine, [PHONE])
    assert problems == []  # no number in clear anywhere, the link table included
    holders = [r for r in _links(engine) if r.origin == "holder" and r.kind != "person"]
    assert {r.kind for r in holders} == {"phone"}  # the account ids are no card numbers
    assert not any("13800000002" in r.link_key + r.shown for r in holders)
    with Session(engine) as s:
        assert group_of(s, a) == {a, b}
        found = groups(s)
        assert [g.accounts for g in found] == [2]
        assert found[0].hubs[0].kind == "phone" and found[0].hubs[0].shown == "139****5678"
        assert {m.pk for m in found[0].members} == {a, b}
        net = neighbourhood(s, a)
        assert [n.pk for n in net.accounts] == [a, b] and net.accounts[1].depth == 1
        assert net.accounts[0].band is not None and net.accounts[0].disposition is not None
        phone = next(e for e in net.entities if e.kind == "phone" and e.accounts == 2)
        assert {(e.account_pk, e.origin) for e in net.edges if e.link_key == phone.link_key} == {
            (a, "said"),
            (b, "said"),
        }
        assert all("1391234" not in e.shown for e in net.entities)


def test_without_a_key_numbers_do_not_link(engine: Engine, no_pii_key: None) -> None:
    _call_both(engine)
    rows = _links(engine)
    assert rows and all(r.kind in ("person", "employer") for r in rows)
    with Session(engine) as s:
        assert groups(s) == []


def _add(s: Session, **over: Any) -> AccountRow:
    """An account with a phone of its own (unless given) and the given fields."""
    n = len(s.exec(select(AccountRow)).all())
    row = AccountRow(**{**_account("0", "某人", f"+861380000{n:04d}", ""), **over})
    s.add(row)
    s.flush()
    return row


def test_holders_sharing_a_phone_or_counterparty_link_but_stop_words_do_not(
    engine: Engine,
) -> None:
    key = LinkKey(b"t" * 32)
    with Session(engine) as s:
        p1 = _add(s, account_id="6222000000000001", name="甲一", phone_e164="+8613800000101")
        p2 = _add(s, account_id="6222000000000002", name="乙二", phone_e164="+8613800000101")
        c1 = _add(s, account_id="6222000000000003", name="丙三", txn_counterparty="钱多多")
        c2 = _add(s, account_id="6222000000000004", name="丁四", txn_counterparty="钱多多")
        c3 = _add(s, account_id="6222000000000005", name="戊五", txn_counterparty="钱多多")
        f1 = _add(s, account_id="6222000000000006", name="己六", txn_counterparty="朋友")
        f2 = _add(s, account_id="6222000000000007", name="庚七", txn_counterparty="公司")
        f3 = _add(s, account_id="6222000000000008", name="辛八", txn_counterparty="公司")
        for row in (p1, p2, c1, c2, c3, f1, f2, f3):
            refresh_account(s, row, key)
        refresh_account(s, p1, key)  # refreshing replaces, never duplicates
        s.commit()
        found = groups(s)
        assert [{m.pk for m in g.members} for g in found] == [
            {c1.id, c2.id, c3.id},
            {p1.id, p2.id},
        ]
        assert found[0].hubs[0].shown == "钱多多" and found[0].hubs[0].accounts == 3
        assert found[1].hubs[0].kind == "phone" and found[1].hubs[0].shown == "138****0101"
        assert found[0].members[0].account_id == "************0003"  # masked
        assert group_of(s, f2.id) == {f2.id}  # type: ignore[arg-type]
        holder_phones = s.execute(
            sa.select(sa.func.count()).where(LINKS.c.account_pk == p1.id, LINKS.c.kind == "phone")
        ).scalar_one()
        assert holder_phones == 1


@pytest.mark.slow
def test_link_stored_rebuilds_calls_stored_before_from_sealed_originals(
    engine: Engine, pii_key: str
) -> None:
    pks = _call_both(engine)
    before = {(r.account_pk, r.kind, r.link_key, r.origin) for r in _links(engine)}
    with engine.begin() as conn:
        conn.execute(sa.delete(LINKS))  # as if stored before the feature
        counts = link_stored(conn, process_link_key(), process_keyring())
    assert counts["accounts"] == 2 and counts["calls"] == 2 and counts["masked"] == 0
    assert {(r.account_pk, r.kind, r.link_key, r.origin) for r in _links(engine)} == before
    with engine.begin() as conn:
        again = link_stored(conn, process_link_key(), process_keyring())
    assert again["calls"] == 0 and len(_links(engine)) == len(before)  # safe to repeat
    # A rotated key leaves the calls' links stale until a rebuild re-keys them.
    with engine.begin() as conn:
        stale = link_stored(conn, LinkKey(b"r" * 32), process_keyring())
        assert stale["stale"] > 0
        rekeyed = link_stored(conn, LinkKey(b"r" * 32), process_keyring(), rebuild=True)
    assert rekeyed["stale"] == 0
    # Without the PII key ring the masked numbers cannot be opened: not linked.
    with engine.begin() as conn:
        blind = link_stored(conn, process_link_key(), None, rebuild=True)
    assert blind["masked"] >= 2
    said = [r for r in _links(engine) if r.kind == "phone" and r.origin == "said"]
    assert said == []
    with Session(engine) as s:
        a = pks[A["account_id"]]
        assert group_of(s, a) == {a}  # the phone was their only tie


def test_holders_with_one_name_link_only_once_someone_names_it(engine: Engine) -> None:
    """Two holders called 周杰 are not tied by that; a flagged transaction to 周杰 ties
    both to the account that sent it."""
    key = LinkKey(b"t" * 32)
    with Session(engine) as s:
        h1 = _add(s, account_id="6222000000000011", name="周杰")
        h2 = _add(s, account_id="6222000000000012", name="周 杰")  # the same, normalised
        for row in (h1, h2):
            refresh_account(s, row, key)
        s.commit()
        assert groups(s) == [] and group_of(s, h1.id or 0) == {h1.id}
        assert [a.pk for a in neighbourhood(s, h1.id or 0).accounts] == [h1.id]
        sender = _add(s, account_id="6222000000000013", name="吴三", txn_counterparty="周杰")
        refresh_account(s, sender, key)
        s.commit()
        assert [g.accounts for g in groups(s)] == [3]
        assert group_of(s, h1.id or 0) == {h1.id, h2.id, sender.id}
        assert {a.pk for a in neighbourhood(s, sender.id or 0).accounts} == {
            h1.id,
            h2.id,
            sender.id,
        }


def test_the_partition_is_reused_until_the_links_change(engine: Engine) -> None:
    from bot.store.links import recent_partition

    key = LinkKey(b"t" * 32)
    with Session(engine) as s:
        a = _add(s, account_id="6222000000000011", name="甲", phone_e164="+8613800000111")
        b = _add(s, account_id="6222000000000012", name="乙", phone_e164="+8613800000111")
        for row in (a, b):
            refresh_account(s, row, key)
        s.commit()
        first = recent_partition(s)
        assert recent_partition(s) is first  # nothing changed: the same one, not recomputed
        c = _add(s, account_id="6222000000000013", name="丙", phone_e164="+8613800000111")
        refresh_account(s, c, key)
        s.commit()
        again = recent_partition(s)
        assert again is not first
        assert groups(s, part=again)[0].accounts == 3 == len(groups(s)[0].members)


def test_a_group_past_the_recursion_bound_comes_whole_from_the_partition(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain of five accounts (each shares a phone or a counterparty with the next) and
    a stranger: with
    the recursion bounded at two accounts, group_of still answers the whole chain (from
    the partition the group list is computed from), and the same set the unbounded
    recursion finds; a holder's name alone still ties no one."""
    from bot.store import links

    key = LinkKey(b"t" * 32)
    with Session(engine) as s:
        chain = [
            _add(s, account_id=f"62220000000001{i:02d}", name="周杰",
                 phone_e164=f"+861380000{i // 2:04d}", txn_counterparty=f"商户{(i + 1) // 2}")
            for i in range(1, 6)
        ]  # fmt: skip
        stranger = _add(s, account_id="6222000000000199", name="周杰", phone_e164="+8613900009999")
        for row in (*chain, stranger):
            refresh_account(s, row, key)
        s.commit()
        whole = {a.id for a in chain}
        monkeypatch.setattr(links, "GROUP_RECURSION_MAX", 2)
        assert len(links.reach(s, chain[0].id or 0, 3)) == 3  # the bounded query stops
        assert links.reach(s, chain[0].id or 0) == whole
        assert group_of(s, chain[0].id or 0) == whole
        assert group_of(s, stranger.id or 0) == {stranger.id}
        part = links.partition(s)
        assert [accounts for accounts, _ in part.components] == [whole]
        assert [g.accounts for g in groups(s, part=part)] == [5]
