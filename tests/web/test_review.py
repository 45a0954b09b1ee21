"""The review queue: roles, CSRF, the atomic claim (two reviewers racing), release,
lapsed claims, verdicts only by the claimer, and an overturned disposition queued to
the bank as a correction; on both databases."""

from __future__ import annotations

import re
import threading

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.store.models import (
    AuditEventRow,
    CallRow,
    DispositionRow,
    OutboxRow,
    ReviewItemRow,
    TurnRow,
    VerdictRow,
)
from tests.web.conftest import Clock, login
from tests.web.factories import populate
from tests.web.test_calls import assert_masked


def items(engine: Engine) -> list[ReviewItemRow]:
    with Session(engine) as s:
        return list(s.exec(select(ReviewItemRow).order_by(col(ReviewItemRow.id))))


def audit_actions(engine: Engine) -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        return [
            (e.actor, e.action, e.object_id)
            for e in s.exec(select(AuditEventRow).order_by(col(AuditEventRow.id)))
        ]


def second_client(app_client: TestClient) -> TestClient:
    return TestClient(app_client.app, base_url="https://testserver", follow_redirects=False)


def race(clients: dict[str, TestClient], tokens: dict[str, str], item_id: int) -> dict[str, int]:
    """Every client claims ``item_id`` at the same instant; their status codes."""
    barrier = threading.Barrier(len(clients))
    results: dict[str, int] = {}

    def claim(who: str) -> None:
        barrier.wait()
        r = clients[who].post(
            f"/api/v1/review/{item_id}/claim", headers={"X-CSRF-Token": tokens[who]}
        )
        results[who] = r.status_code

    threads = [threading.Thread(target=claim, args=(who,)) for who in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_queue_roles_and_page(app_client: TestClient, engine: Engine) -> None:
    populate(engine)
    queued = items(engine)
    assert queued and {i.state for i in queued} == {"open"}
    for role in ("compliance",):
        token = login(app_client, role)
        assert app_client.get("/api/v1/review").status_code == 403
        assert app_client.get("/review").status_code == 403
        assert app_client.get(f"/review/{queued[0].id}").status_code == 403
        r = app_client.post(f"/api/v1/review/{queued[0].id}/claim", headers={"X-CSRF-Token": token})
        assert r.status_code == 403
    for role in ("reviewer", "supervisor", "admin"):
        login(app_client, role)
        body = app_client.get("/api/v1/review?sort=oldest").json()
        assert body["total_open"] == len(queued) and body["mine"] == []
        assert [i["id"] for i in body["open"]] == [i.id for i in queued]
        assert {i["reason"] for i in body["open"]} <= {"suspicious", "sample"}
        assert_masked(str(body))
    page = app_client.get("/review")
    assert page.status_code == 200
    assert_masked(page.text)
    assert len(re.findall(r'action="/review/\d+/claim"', page.text)) == len(queued)
    assert app_client.get("/api/v1/review").status_code == 200
    assert app_client.get("/static/review.js").status_code == 200
    assert app_client.get("/review/99999").status_code == 404


def test_claim_is_atomic_under_a_race(
    app_client: TestClient, engine: Engine, users: dict[str, int]
) -> None:
    populate(engine)
    other = second_client(app_client)
    with other:
        tokens = {
            "reviewer": login(app_client, "reviewer"),
            "supervisor": login(other, "supervisor"),
        }
        for item in items(engine)[:3]:
            clients = {"reviewer": app_client, "supervisor": other}
            results = race(clients, tokens, item.id or 0)
            assert sorted(results.values()) == [200, 409], results
            winner = next(w for w, code in results.items() if code == 200)
            with Session(engine) as s:
                row = s.get(ReviewItemRow, item.id)
                assert row is not None and row.state == "claimed"
                assert row.claimed_by == users[winner]
            claims = [
                a
                for a in audit_actions(engine)
                if a[1] == "review_claimed" and a[2] == str(item.id)
            ]
            assert claims == [(winner, "review_claimed", str(item.id))]


def test_claim_release_lapse_and_csrf(app_client: TestClient, engine: Engine, clock: Clock) -> None:
    populate(engine)
    first = items(engine)[0].id
    other = second_client(app_client)
    with other:
        mine = login(app_client, "reviewer")
        theirs = login(other, "admin")
        assert app_client.post(f"/api/v1/review/{first}/claim").status_code == 403  # no CSRF
        assert app_client.post(f"/review/{first}/claim", data={}).status_code == 403
        assert items(engine)[0].state == "open"
        assert (
            app_client.post(
                "/api/v1/review/99999/claim", headers={"X-CSRF-Token": mine}
            ).status_code
            == 404
        )
        r = app_client.post(f"/review/{first}/claim", data={"csrf_token": mine})
        assert r.status_code == 303 and r.headers["location"] == f"/review/{first}"
        assert (
            app_client.post(
                f"/api/v1/review/{first}/claim", headers={"X-CSRF-Token": mine}
            ).status_code
            == 200
        )  # again: mine
        assert (
            other.post(
                f"/api/v1/review/{first}/claim", headers={"X-CSRF-Token": theirs}
            ).status_code
            == 409
        )
        assert other.post(f"/review/{first}/claim", data={"csrf_token": theirs}).status_code == 409
        assert (
            other.post(
                f"/api/v1/review/{first}/release", headers={"X-CSRF-Token": theirs}
            ).status_code
            == 409
        )
        queue = app_client.get("/api/v1/review").json()
        assert [i["id"] for i in queue["mine"]] == [first]
        assert first not in [i["id"] for i in queue["open"]]
        assert first not in [i["id"] for i in other.get("/api/v1/review").json()["open"]]
        # releasing: the page form without CSRF is refused, with it the item is open again
        assert app_client.post(f"/review/{first}/release", data={}).status_code == 403
        r = app_client.post(f"/review/{first}/release", data={"csrf_token": mine})
        assert r.status_code == 303 and items(engine)[0].state == "open"
        # a claim lapses after 30 minutes: then another reviewer may take the item over
        assert (
            app_client.post(
                f"/api/v1/review/{first}/claim", headers={"X-CSRF-Token": mine}
            ).status_code
            == 200
        )
        clock.advance(minutes=29)
        for client in (app_client, other):  # keep both sessions alive (idle expiry: 30 min)
            assert client.get("/api/v1/review").status_code == 200
        assert (
            other.post(
                f"/api/v1/review/{first}/claim", headers={"X-CSRF-Token": theirs}
            ).status_code
            == 409
        )
        clock.advance(minutes=2)
        assert first in [i["id"] for i in other.get("/api/v1/review").json()["open"]]
        taken = other.post(f"/api/v1/review/{first}/claim", headers={"X-CSRF-Token": theirs})
        assert taken.status_code == 200 and taken.json()["claimed_by"] == "admin"
        verdict = {"agree": True}
        r = app_client.post(
            f"/api/v1/review/{first}/verdict", json=verdict, headers={"X-CSRF-Token": mine}
        )
        assert r.status_code == 409  # the reviewer lost the item
        assert (
            other.post(f"/api/v1/review/{first}/verdict", json=verdict).status_code == 403
        )  # no CSRF


def test_verdicts_and_the_correction_sent_to_the_bank(
    app_client: TestClient, engine: Engine
) -> None:
    populate(engine)
    with Session(engine) as s:
        callee_turns = {
            i.id: [t.idx for t in s.exec(select(TurnRow).where(TurnRow.call_id == i.call_id,
                                                             TurnRow.role == "callee"))]
            for i in items(engine)
        }  # fmt: skip
    # the overturned call has two callee turns to correct; the page's has one
    ordered = sorted(callee_turns, key=lambda i: -len(callee_turns[i]))
    overturn_item, page_item, agree_item = ordered[0], ordered[1], ordered[2]
    first_turn, second_turn = callee_turns[overturn_item][:2]
    page_turn = callee_turns[page_item][0]
    token = login(app_client, "reviewer")
    headers = {"X-CSRF-Token": token}
    # a verdict needs the claim
    assert (
        app_client.post(
            f"/api/v1/review/{agree_item}/verdict", json={"agree": True}, headers=headers
        ).status_code
        == 409
    )
    for item in (agree_item, overturn_item, page_item):
        assert app_client.post(f"/api/v1/review/{item}/claim", headers=headers).status_code == 200
    with Session(engine) as s:
        outbox_before = len(s.exec(select(OutboxRow)).all())

    ok = app_client.post(
        f"/api/v1/review/{agree_item}/verdict", json={"agree": True}, headers=headers
    )
    assert ok.status_code == 200 and ok.json()["correction_queued"] is False
    assert (
        app_client.post(
            f"/api/v1/review/{agree_item}/verdict", json={"agree": True}, headers=headers
        ).status_code
        == 409
    )  # done

    with Session(engine) as s:
        item = s.get(ReviewItemRow, overturn_item)
        assert item is not None
        call = s.get(CallRow, item.call_id)
        assert call is not None
    new = "monitor" if call.disposition != "monitor" else "clear"
    for bad, why in [
        ({"agree": False, "reason": "wrong"}, "must change"),
        ({"agree": False, "corrected_disposition": new}, "reason"),
        (
            {"agree": False, "corrected_disposition": call.disposition, "reason": "same"},
            "must change",
        ),
        ({"agree": True, "turn_corrections": [{"turn_idx": 999, "text": "x"}]}, "no such turn"),
    ]:
        r = app_client.post(f"/api/v1/review/{overturn_item}/verdict", json=bad, headers=headers)
        assert r.status_code == 400 and why in r.json()["detail"], (bad, r.text)
    for bad_vocab in (
        {"agree": False, "corrected_band": "purple", "reason": "x"},
        {
            "agree": True,
            "turn_corrections": [{"turn_idx": first_turn, "reading": ["custody=given"]}],
        },
        {"agree": True, "turn_corrections": [{"turn_idx": first_turn, "reading": ["holder=self"]}]},
    ):
        r = app_client.post(
            f"/api/v1/review/{overturn_item}/verdict", json=bad_vocab, headers=headers
        )
        assert r.status_code == 422, bad_vocab
    overturn = {
        "agree": False,
        "corrected_band": "low",
        "corrected_disposition": new,
        "reason": "callee's father confirmed; call 13800000002",
        "turn_corrections": [{"turn_idx": first_turn, "text": "是我本人", "intent": "affirm"},
                             {"turn_idx": second_turn, "intent": "deny",
                              "reading": ["acts=deny", "holder=self", "acts=deny"]}],
    }  # fmt: skip
    r = app_client.post(f"/api/v1/review/{overturn_item}/verdict", json=overturn, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["correction_queued"] is True and body["corrected_disposition"] == new
    assert "13800000002" not in body["reason"]
    with Session(engine) as s:
        verdict = s.exec(select(VerdictRow).where(VerdictRow.review_item_id == overturn_item)).one()
        assert not verdict.agree and verdict.corrected_disposition == new
        assert verdict.corrected_band == ("low" if call.risk_band != "low" else None)
        assert [c["turn_idx"] for c in verdict.turn_corrections] == [first_turn, second_turn]
        assert verdict.turn_corrections[1] == {
            "turn_idx": second_turn,
            "text": None,
            "intent": "deny",
            "reading": ["acts=deny", "holder=self"],  # validated, sorted, de-duplicated
        }
        assert s.get(ReviewItemRow, overturn_item).state == "done"  # type: ignore[union-attr]
        outbox = s.exec(select(OutboxRow).order_by(col(OutboxRow.id))).all()
        assert len(outbox) == outbox_before + 1
        correction = outbox[-1]
        original = next(
            o for o in outbox if o.kind == "disposition" and o.payload["call"]["id"] == call.id
        )
        disposition = s.get(DispositionRow, correction.disposition_id)
        assert disposition is not None and disposition.source == "review"
        assert disposition.disposition == new
    p = correction.payload
    assert correction.kind == "correction" and p["kind"] == "correction"
    assert p["corrects"] == original.idempotency_key
    assert p["disposition"] == new and p["decided_by"] == "review"
    assert p["review"]["previous_disposition"] == call.disposition
    assert p["review"]["reviewer"] == "reviewer" and "13800000002" not in str(p)
    verdicts = [a for a in audit_actions(engine) if a[1] == "verdict"]
    assert verdicts == [
        ("reviewer", "verdict", str(agree_item)),
        ("reviewer", "verdict", str(overturn_item)),
    ]

    # the page: the item shows the verdict form and shortcuts; the form posts a verdict
    page = app_client.get(f"/review/{page_item}")
    assert (
        page.status_code == 200 and 'id="verdict-form"' in page.text and "<kbd>a</kbd>" in page.text
    )
    assert 'src="/static/review.js"' in page.text or "review.js" in page.text
    assert_masked(page.text)
    assert f'name="turn_{page_turn}_reading"' in page.text and "custody=lent" in page.text
    form = {
        "decision": "agree",
        f"turn_{page_turn}_text": "对，是我",
        f"turn_{page_turn}_intent": "",
        f"turn_{page_turn}_reading": "acts=confirm, acts=ask_who",
    }
    assert app_client.post(f"/review/{page_item}/verdict", data=form).status_code == 403  # no CSRF
    r = app_client.post(
        f"/review/{page_item}/verdict", data={**form, "then": "queue", "csrf_token": token}
    )  # the plain "submit": back to the queue (submit-and-next: tests/web/test_review_queue.py)
    assert r.status_code == 303 and r.headers["location"] == f"/review?done={page_item}"
    with Session(engine) as s:
        v = s.exec(select(VerdictRow).where(VerdictRow.review_item_id == page_item)).one()
        stored = s.exec(
            select(TurnRow).where(TurnRow.call_id == v_call(s, page_item), TurnRow.idx == page_turn)
        ).one()
        want: dict[str, object] = {"turn_idx": page_turn, "text": "对，是我", "intent": None}
        if sorted(stored.reading) != ["acts=ask_who", "acts=confirm"]:
            want["reading"] = ["acts=ask_who", "acts=confirm"]
        assert v.agree and v.turn_corrections == [want]
    done = app_client.get(f"/review/{page_item}")
    assert 'id="verdict-form"' not in done.text and "复核结论：认同" in done.text
    assert app_client.get("/api/v1/calls?review=done").json()["total"] == 3


def v_call(session: Session, item_id: int) -> int:
    item = session.get(ReviewItemRow, item_id)
    assert item is not None
    return item.call_id


def test_the_item_page_is_chinese_by_default_and_english_on_request(
    app_client: TestClient, engine: Engine
) -> None:
    """Vocabulary values are shown by their labels (暂停非柜面交易, never the value as
    text), the words in the page's language; ?lang=en gives English."""
    populate(engine)
    with Session(engine) as s:
        call = s.exec(select(CallRow).where(CallRow.disposition == "suspend_non_counter")).first()
        assert call is not None
        item = s.exec(select(ReviewItemRow).where(ReviewItemRow.call_id == call.id)).one()
    token = login(app_client, "reviewer")
    assert (
        app_client.post(f"/review/{item.id}/claim", data={"csrf_token": token}).status_code == 303
    )
    zh = app_client.get(f"/review/{item.id}").text
    assert '<html lang="zh-CN">' in zh and "复核结论" in zh and "提交并下一条 (Enter)" in zh
    assert 'data-value="suspend_non_counter">暂停非柜面交易<' in zh
    assert ">suspend_non_counter<" not in zh and ">high<" not in zh
    assert '<option value="suspend_all">暂停全部交易</option>' in zh  # the corrected disposition
    assert "键盘快捷键" in zh and "开始复核：" in zh  # the ? help
    assert "UTC" not in zh.split("<main")[1].split("</main>")[0]  # times in web.timezone
    en = app_client.get(f"/review/{item.id}?lang=en").text
    assert '<html lang="en">' in en and "Submit and next (Enter)" in en
    assert 'data-value="suspend_non_counter">Suspend non-counter transactions<' in en
    assert "Keyboard shortcuts" in en and "暂停非柜面交易" not in en
    queue_en = app_client.get("/review").text  # the choice is remembered
    assert "Review queue" in queue_en and "Your items" in queue_en
