"""The compliance workspace: roles, CSRF, lint, the sandbox screen, preview, evaluation,
diff, four-eyes publishing and roll-back, over the API and the pages, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.settings import Settings
from bot.store.models import AuditEventRow, ScriptVersionRow
from bot.templates_store import packaged_scripts
from tests.web.conftest import login

DOC = "dormant_short"
API = f"/api/v1/workspace/scripts/{DOC}"
PAGE = f"/workspace/scripts/{DOC}"
PACKAGED = packaged_scripts(Settings().templates_dir)[DOC]
GREETING = "这里是{{ bank_name }}反诈中心。"


def with_greeting(say: str = GREETING, extra: str = "") -> str:
    """The packaged script with a greeting node before the opening (lint-clean)."""
    return (
        PACKAGED.replace("start: opening", "start: hello")
        + f'nodes:\n  hello:\n    say: "{say}"\n    next: opening\n{extra}'
    )


def line_of(source: str, needle: str) -> int:
    return next(i for i, text in enumerate(source.splitlines(), 1) if needle in text)


def h(token: str) -> dict[str, str]:
    return {"X-CSRF-Token": token}


def save(client: TestClient, token: str, source: str, api: str = API) -> Any:
    return client.post(f"{api}/versions", json={"source": source}, headers=h(token))


def act(client: TestClient, token: str, number: int, action: str, api: str = API) -> Any:
    body = {"reason": "wording not approved"} if action == "reject" else None
    return client.post(f"{api}/versions/{number}/{action}", json=body, headers=h(token))


def publish(client: TestClient, source: str, author: str = "compliance") -> int:
    """Save, submit (author) and approve (the other compliance officer); the version."""
    token = login(client, author)
    number: int = save(client, token, source).json()["version"]["version"]
    assert act(client, token, number, "submit").status_code == 200
    other = login(client, "compliance2" if author == "compliance" else "compliance")
    assert act(client, other, number, "approve").status_code == 200
    return number


def actions(engine: Engine, prefix: str = "") -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        rows = s.exec(select(AuditEventRow).order_by(col(AuditEventRow.id))).all()
        return [(r.actor, r.action, r.object_id) for r in rows if r.action.startswith(prefix)]


def states(engine: Engine) -> dict[int, str]:
    with Session(engine) as s:
        return {
            r.version: r.state
            for r in s.exec(select(ScriptVersionRow).where(ScriptVersionRow.script_id == DOC))
        }


API_GETS = [
    "/api/v1/workspace/documents",
    "/api/v1/workspace/accounts",
    f"{API}/versions",
    f"{API}/versions/0",
    f"{API}/versions/0/preview",
    f"{API}/versions/0/diff",
    f"{API}/versions/0/evaluation",
]
API_POSTS: list[tuple[str, dict[str, Any] | None]] = [
    (f"{API}/lint", {"source": PACKAGED}),
    (f"{API}/versions", {"source": PACKAGED}),
    (f"{API}/versions/0/evaluate", {"sets": ["public"], "personas": ["p01_salary_owner"]}),
    (f"{API}/versions/1/submit", None),
    (f"{API}/versions/1/approve", None),
    (f"{API}/versions/1/reject", {"reason": "no"}),
    (f"{API}/versions/0/rollback", None),
]
PAGES = [
    "/workspace",
    PAGE,
    f"{PAGE}/edit",
    f"{PAGE}/versions/0",
    f"{PAGE}/versions/0/preview",
    f"{PAGE}/versions/0/diff",
    f"{PAGE}/versions/0/evaluation",
]
PAGE_POSTS: list[tuple[str, dict[str, Any]]] = [
    (f"{PAGE}/versions", {"source": PACKAGED}),
    (f"{PAGE}/versions/0/evaluate", {"sets": "public"}),
    (f"{PAGE}/versions/1/submit", {}),
    (f"{PAGE}/versions/1/approve", {}),
    (f"{PAGE}/versions/1/reject", {"reason": "no"}),
    (f"{PAGE}/versions/0/rollback", {}),
]


@pytest.mark.parametrize("role", ["reviewer", "supervisor"])
def test_roles_without_the_workspace_are_refused_everywhere(
    app_client: TestClient, engine: Engine, role: str
) -> None:
    token = login(app_client, role)
    for url in API_GETS:
        assert app_client.get(url).status_code == 403, url
    for url, body in API_POSTS:
        assert app_client.post(url, json=body, headers=h(token)).status_code == 403, url
    for url in PAGES:
        page = app_client.get(url)
        assert page.status_code == 403 and "您的角色无权执行此操作" in page.text, url
        assert "Workspace</a>" not in page.text  # nor is it in the menu
    for url, form in PAGE_POSTS:
        r = app_client.post(url, data={**form, "csrf_token": token})
        assert r.status_code == 403, url
    assert states(engine) == {}
    denied = [a for a in actions(engine, "access_denied") if a[0] == role]
    assert len(denied) == len(API_GETS) + len(API_POSTS) + len(PAGES) + len(PAGE_POSTS)


def test_signed_out_visitors_and_posts_without_the_csrf_token_are_refused(
    app_client: TestClient, engine: Engine
) -> None:
    assert app_client.get(API_GETS[0]).status_code == 401
    page = app_client.get("/workspace")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    login(app_client, "compliance")
    for url, body in API_POSTS:
        assert app_client.post(url, json=body).status_code == 403, url
        bad = app_client.post(url, json=body, headers={"X-CSRF-Token": "forged"})
        assert bad.status_code == 403, url
    for url, form in PAGE_POSTS:
        assert app_client.post(url, data=form).status_code == 403, url
        assert app_client.post(url, data={**form, "csrf_token": "forged"}).status_code == 403
    assert states(engine) == {}
    assert not actions(engine, "evaluate")


def test_compliance_opens_every_page_and_lint_locates_each_error(
    app_client: TestClient,
) -> None:
    token = login(app_client, "compliance")
    for url in PAGES:
        assert app_client.get(url).status_code == 200, url
    index = app_client.get("/workspace").text
    assert f'href="{PAGE}"' in index and 'href="/workspace/rulesets/default"' in index
    documents = app_client.get("/api/v1/workspace/documents").json()
    assert {(d["kind"], d["doc"]) for d in documents} >= {("scripts", DOC), ("rulesets", "default")}
    assert app_client.get("/api/v1/workspace/scripts/nope/versions").status_code == 404
    assert app_client.get("/api/v1/workspace/rulesets/other/versions").status_code == 404
    clean = app_client.post(f"{API}/lint", json={"source": with_greeting()}, headers=h(token))
    assert clean.json() == {"ok": True, "errors": [], "refused": []}
    leak = with_greeting("您好{{ holder_nam }}。")
    body = app_client.post(f"{API}/lint", json={"source": leak}, headers=h(token)).json()
    assert body["ok"] is False and not body["refused"]
    [error] = body["errors"]
    assert error["file"] == f"scripts/{DOC}.yaml" and error["line"] == line_of(leak, "holder_nam")
    assert "holder_nam" in error["message"]
    broken = PACKAGED.replace("tiers: [low]", "tiers: [low")
    body = app_client.post(f"{API}/lint", json={"source": broken}, headers=h(token)).json()
    assert body["errors"][0]["line"] is not None and "YAML" in body["errors"][0]["message"]
    renamed = PACKAGED.replace(f"id: {DOC}", "id: something_else")
    body = app_client.post(f"{API}/lint", json={"source": renamed}, headers=h(token)).json()
    assert any("routing" in e["file"] or e["field"] == "id" for e in body["errors"])
    ruleset = app_client.get("/api/v1/workspace/rulesets/default/versions/0").json()["source"]
    bad_rules = ruleset.replace("category: hard", "category: severe", 1)
    body = app_client.post(
        "/api/v1/workspace/rulesets/default/lint", json={"source": bad_rules}, headers=h(token)
    ).json()
    [error] = body["errors"]
    assert error["line"] == line_of(bad_rules, "category: severe") and "category" in error["field"]


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ holder_name._secret }}",
    "{{ holder_name|attr('upper') }}",
    "{{ holder_name['__class__'] }}",
    "{{ lipsum }}",
    "{{ 9 ** 9 ** 9 }}",
    "{% include 'x.html' %}",
]


def test_sandbox_escapes_are_refused_audited_and_never_stored(
    app_client: TestClient, engine: Engine
) -> None:
    token = login(app_client, "compliance")
    for payload in ESCAPES:
        source = with_greeting(f"您好{payload}")
        r = save(app_client, token, source)
        assert r.status_code == 422, payload
        [problem] = r.json()["problems"]
        assert problem["line"] == line_of(source, "hello:") + 1, payload
        linted = app_client.post(f"{API}/lint", json={"source": source}, headers=h(token))
        assert linted.json()["refused"] and not linted.json()["ok"]
    # a payload hidden in YAML that does not even parse is refused too
    r = save(app_client, token, PACKAGED + "\nbroken: [\n  x: \"{{ ''.__class__ }}\"\n")
    assert r.status_code == 422
    # the page form refuses and keeps the text in the editor, unsaved
    form = app_client.post(
        f"{PAGE}/versions", data={"source": with_greeting(ESCAPES[1]), "csrf_token": token}
    )
    assert form.status_code == 422 and "已拒绝：模板试图突破沙箱：未保存任何内容。" in form.text
    assert "cycler.__init__.__globals__" in form.text
    assert states(engine) == {}
    rejected = actions(engine, "template_rejected")
    assert len(rejected) == 2 * len(ESCAPES) + 2 and {a[0] for a in rejected} == {"compliance"}
    with Session(engine) as s:
        event = s.exec(
            select(AuditEventRow).where(AuditEventRow.action == "template_rejected")
        ).first()
        assert event is not None and event.detail["stage"] == "save"
        assert event.detail["problems"][0]["reason"] and len(event.detail["digest"]) == 64


#: Pass the static screen, then spend the render budget (the probe's denial of service).
EXHAUSTING = [
    "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(20) }}",
    "{% set s = 'ab' %}" + "{% set s = s ~ s %}" * 30 + "{{ s|length }}",
    "{% set big = holder_name * 900 %}{{ big|replace('', big) }}",
]


def test_exhausting_templates_are_refused_within_their_budget_while_login_answers(
    app_client: TestClient, engine: Engine
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = login(app_client, "compliance")
    sources = [with_greeting(f"您好{payload}") for payload in EXHAUSTING] * 3

    def lint(source: str) -> Any:
        return app_client.post(f"{API}/lint", json={"source": source}, headers=h(token))

    with ThreadPoolExecutor(len(sources) + 1) as pool:
        linted = [pool.submit(lint, source) for source in sources]
        login_page = pool.submit(app_client.get, "/login")
        assert login_page.result().status_code == 200
        for future, source in zip(linted, sources, strict=True):
            body = future.result().json()
            [problem] = body["refused"]
            assert "render limits" in problem["message"] and not body["ok"]
            assert problem["line"] == line_of(source, "hello:") + 1
    for payload in EXHAUSTING:
        r = save(app_client, token, with_greeting(f"您好{payload}"))
        assert r.status_code == 422 and "render limits" in r.json()["problems"][0]["message"]
    assert states(engine) == {}
    assert len(actions(engine, "template_rejected")) == 3 * len(EXHAUSTING) + len(EXHAUSTING)


def test_a_draft_may_be_saved_with_errors_but_not_submitted(
    app_client: TestClient, engine: Engine
) -> None:
    token = login(app_client, "compliance")
    broken = with_greeting("您好{{ nobody }}。")
    r = save(app_client, token, broken)
    assert r.status_code == 201 and r.json()["errors"]
    number = r.json()["version"]["version"]
    assert number == 1 and r.json()["version"]["state"] == "draft"
    again = save(app_client, token, broken)  # unchanged text: the same draft
    assert again.json()["version"]["version"] == 1
    refused = act(app_client, token, 1, "submit")
    assert refused.status_code == 422 and refused.json()["problems"][0]["line"] == line_of(
        broken, "nobody"
    )
    detail = app_client.get(f"{API}/versions/1").json()
    assert detail["source"] == broken and detail["errors"]
    page = app_client.get(f"{PAGE}/versions/1")
    assert "未知的变量“nobody”" in page.text and 'class="bad"' in page.text
    fixed = save(app_client, token, with_greeting())
    assert fixed.json()["version"]["version"] == 2 and fixed.json()["errors"] == []
    other = login(app_client, "compliance2")
    assert act(app_client, other, 2, "submit").status_code == 409  # only the author submits
    assert states(engine) == {1: "draft", 2: "draft"}
    assert [a[1] for a in actions(engine, "template_saved")] == ["template_saved"] * 2
