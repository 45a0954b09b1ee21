"""The compliance workspace, continued: preview, diff, evaluation, four-eyes publishing,
rejection and roll-back, over the API and the pages, on both databases."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.store.models import AuditEventRow, RulesetVersionRow
from tests.web.conftest import login
from tests.web.test_workspace import (
    API,
    DOC,
    PACKAGED,
    PAGE,
    act,
    actions,
    h,
    line_of,
    publish,
    save,
    states,
    with_greeting,
)


def test_a_draft_is_previewed_masked_and_compared_line_by_line(
    app_client: TestClient,
) -> None:
    token = login(app_client, "compliance")
    save(app_client, token, with_greeting())
    body = app_client.get(f"{API}/versions/1/preview?account=p01_salary_owner").json()
    assert body["account"]["key"] == "p01_salary_owner" and "*" in body["account"]["account_id"]
    assert "*" in body["account"]["phone"]
    by_node = {(p["node"], p["label"]): p for p in body["prompts"]}
    assert by_node[("hello", "say")]["text"] == "这里是示例银行反诈中心。"
    assert not by_node[("hello", "say")]["after_identity"]
    assert by_node[("hello", "say")]["line"] == line_of(with_greeting(), "hello:") + 1
    assert len(body["prompts"]) > 10 and all(not p["error"] for p in body["prompts"])
    assert any(p["after_identity"] for p in body["prompts"])
    page = app_client.get(f"{PAGE}/versions/1/preview?account=sample")
    assert page.status_code == 200 and "这里是示例银行反诈中心。" in page.text
    assert "6222000000000000" not in page.text  # the sample account number, masked
    assert app_client.get(f"{API}/versions/1/preview?account=nobody").status_code == 404
    rules = app_client.get("/api/v1/workspace/rulesets/default/versions/0/preview")
    assert rules.status_code == 404
    body = app_client.get(f"{API}/versions/1/diff").json()  # against the published (v0)
    assert body["old"] == f"{DOC}@0" and body["new"] == f"{DOC}@1"
    added = [d for d in body["lines"] if d["op"] == "+"]
    removed = [d for d in body["lines"] if d["op"] == "-"]
    assert [d["text"] for d in removed] == ["start: opening"]
    assert "start: hello" in [d["text"] for d in added] and len(added) == 5
    assert "-start: opening" in body["unified"] and "+start: hello" in body["unified"]
    hello = next(d for d in added if d["text"] == "  hello:")
    assert hello["new_no"] == line_of(with_greeting(), "hello:") and hello["old_no"] is None
    back = app_client.get(f"{API}/versions/0/diff?against=1").json()
    assert [d["text"] for d in back["lines"] if d["op"] == "+"] == ["start: opening"]
    page = app_client.get(f"{PAGE}/versions/1/diff?against=0")
    assert page.text.count('class="add"') == 5 and page.text.count('class="del"') == 1
    assert app_client.get(f"{API}/versions/1/diff?against=9").status_code == 404


def test_evaluation_runs_personas_next_to_the_published_set(
    app_client: TestClient, engine: Engine
) -> None:
    token = login(app_client, "compliance")
    save(app_client, token, with_greeting())
    wanted = ["p01_salary_owner", "p03_wrong_person"]
    r = app_client.post(
        f"{API}/versions/1/evaluate",
        json={"sets": ["public"], "personas": wanted},
        headers=h(token),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"]["summary"]["n"] == 2 and body["published"]["label"].startswith("v0")
    assert [p["id"] for p in body["version"]["personas"]] == wanted
    assert body["version"]["summary"]["passed"] == body["published"]["summary"]["passed"] == 2
    stored = app_client.get(f"{API}/versions/1/evaluation").json()
    assert stored == body
    page = app_client.get(f"{PAGE}/versions/1/evaluation")
    assert "p03_wrong_person" in page.text and "ws-pass" in page.text
    assert "本版本通过 <strong>2/2</strong>" in app_client.get(f"{PAGE}/versions/1").text
    assert actions(engine, "evaluate") == [("compliance", "evaluate", f"{DOC}@1")]
    unknown = app_client.post(
        f"{API}/versions/1/evaluate", json={"sets": ["secret"]}, headers=h(token)
    )
    assert unknown.status_code == 422


def test_four_eyes_publish_and_rejection(app_client: TestClient, engine: Engine) -> None:
    token = login(app_client, "compliance")
    first = save(app_client, token, with_greeting()).json()["version"]["version"]
    assert act(app_client, token, first, "approve").status_code == 409  # a draft
    assert act(app_client, token, first, "submit").json()["state"] == "pending"
    own = act(app_client, token, first, "approve")
    assert own.status_code == 403 and "second person" in own.json()["detail"]
    assert actions(engine, "self_approval_refused") == [
        ("compliance", "self_approval_refused", f"{DOC}@1")
    ]
    other = login(app_client, "compliance2")
    published = act(app_client, other, first, "approve").json()
    assert published["state"] == "published" and published["approved_by"] == "compliance2"
    assert published["author"] == "compliance" and published["published_at"]
    versions = app_client.get(f"{API}/versions").json()
    assert [(v["version"], v["state"]) for v in versions] == [(1, "published"), (0, "retired")]
    second = publish(app_client, with_greeting("您好，这里是{{ bank_name }}。"), "compliance2")
    assert states(engine) == {1: "retired", second: "published"}
    steps = ["template_saved", "template_submitted", "template_approved", "template_published"]
    assert [a[1] for a in actions(engine, "template_")] == steps * 2
    overview = {d["doc"]: d for d in app_client.get("/api/v1/workspace/documents").json()}
    assert overview[DOC]["published_version"] == second and overview[DOC]["versions"] == 2
    # a pending version may be rejected instead, with a reason
    token = login(app_client, "compliance")
    third = save(app_client, token, with_greeting("喂，这里是{{ bank_name }}。")).json()
    third = third["version"]["version"]
    act(app_client, token, third, "submit")
    other = login(app_client, "compliance2")
    empty = app_client.post(f"{API}/versions/{third}/reject", json={"reason": ""}, headers=h(other))
    assert empty.status_code == 422
    assert act(app_client, other, third, "reject").json()["state"] == "rejected"
    assert act(app_client, other, third, "approve").status_code == 409
    with Session(engine) as s:
        event = s.exec(
            select(AuditEventRow).where(AuditEventRow.action == "approval_rejected")
        ).one()
        assert event.actor == "compliance2" and event.detail["reason"] == "wording not approved"


def test_roll_back_is_a_new_version_a_second_person_approves(
    app_client: TestClient, engine: Engine
) -> None:
    v1 = publish(app_client, with_greeting())
    v2 = publish(app_client, with_greeting("您好，这里是{{ bank_name }}。"))
    token = login(app_client, "compliance")
    assert act(app_client, token, v2, "rollback").status_code == 409  # published now
    back = act(app_client, token, v1, "rollback")
    assert back.status_code == 201
    v3 = back.json()["version"]
    assert back.json()["state"] == "pending" and back.json()["author"] == "compliance"
    assert app_client.get(f"{API}/versions/{v3}").json()["source"] == with_greeting()
    assert act(app_client, token, v3, "approve").status_code == 403
    other = login(app_client, "compliance2")
    assert act(app_client, other, v3, "approve").json()["state"] == "published"
    assert states(engine) == {v1: "retired", v2: "retired", v3: "published"}
    to_packaged = act(app_client, other, 0, "rollback").json()
    assert app_client.get(f"{API}/versions/{to_packaged['version']}").json()["source"] == PACKAGED
    [event] = [a for a in actions(engine, "template_rollback") if a[2] == f"{DOC}@{v3}"]
    assert event[0] == "compliance"


def test_the_pages_drive_the_whole_flow(app_client: TestClient, engine: Engine) -> None:
    token = login(app_client, "compliance")
    editor = app_client.get(f"{PAGE}/edit")
    assert editor.status_code == 200 and 'id="ws-source"' in editor.text
    assert f'data-lint-url="{API}/lint"' in editor.text and "workspace.js" in editor.text
    saved = app_client.post(
        f"{PAGE}/versions", data={"source": with_greeting(), "csrf_token": token}
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"{PAGE}/versions/1"
    page = app_client.get(f"{PAGE}/versions/1").text
    assert 'id="ws-submit"' in page and "提交审批" in page and 'id="ws-approve"' not in page
    submitted = app_client.post(f"{PAGE}/versions/1/submit", data={"csrf_token": token})
    assert submitted.status_code == 303
    assert "等待第二人审批" in app_client.get(f"{PAGE}/versions/1").text
    # four eyes, said in the page's language (the API keeps its English detail)
    own = app_client.post(f"{PAGE}/versions/1/approve", data={"csrf_token": token})
    assert own.status_code == 403 and "双人复核：您的版本须由第二人审批" in own.text
    own_en = app_client.post(f"{PAGE}/versions/1/approve?lang=en", data={"csrf_token": token})
    assert "four eyes: a second person must approve your version" in own_en.text
    api = app_client.post(f"{API}/versions/1/approve", headers=h(token))
    assert api.json()["detail"] == "four eyes: a second person must approve your version"
    app_client.cookies.delete("bot_lang")
    other = login(app_client, "compliance2")
    assert "审批并发布" in app_client.get(f"{PAGE}/versions/1").text
    ok = app_client.post(f"{PAGE}/versions/1/approve", data={"csrf_token": other})
    assert ok.status_code == 303 and states(engine) == {1: "published"}
    evaluated = app_client.post(
        f"{PAGE}/versions/1/evaluate", data={"sets": "public", "csrf_token": other}
    )
    assert evaluated.status_code == 303 and evaluated.headers["location"].endswith("/evaluation")
    document = app_client.get(PAGE).text
    assert re.search(r'v1</a>.*?data-state="published">已发布', document, re.S)
    assert 'id="ws-rollback"' not in app_client.get(f"{PAGE}/versions/1").text
    assert "回滚到此版本" in app_client.get(f"{PAGE}/versions/0").text


def test_the_rule_set_goes_through_the_same_flow(app_client: TestClient, engine: Engine) -> None:
    api = "/api/v1/workspace/rulesets/default"
    token = login(app_client, "compliance")
    source = app_client.get(f"{api}/versions/0").json()["source"]
    changed = re.sub(r'^version: ".*"$', 'version: "2099.1.1"', source, count=1, flags=re.M)
    assert changed != source
    r = save(app_client, token, changed, api)
    assert r.status_code == 201 and r.json()["errors"] == []
    assert act(app_client, token, 1, "submit", api).status_code == 200
    other = login(app_client, "compliance2")
    assert act(app_client, other, 1, "approve", api).json()["state"] == "published"
    with Session(engine) as s:
        row = s.exec(select(RulesetVersionRow)).one()
        assert row.version == "1" and row.state == "published" and row.source == changed
    run = app_client.post(
        f"{api}/versions/0/evaluate",
        json={"sets": ["public"], "personas": ["p02_lent_to_friend"]},
        headers=h(other),
    ).json()
    assert run["version"]["summary"]["n"] == 1 and run["published"]["label"] == "v1 (published)"
