"""Blocks and language packs are workspace documents like scripts: lint inside the whole
library (a block's error located in the block, what it breaks in the scripts that include
it), preview with a link from each prompt to the line it was written on, the diff on the
approval screen, four-eyes publishing, identical drafts refused, and evaluation progress
streamed."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.runtime import build_investigator
from bot.settings import Settings
from bot.store.models import AuditEventRow, ScriptVersionRow
from bot.templates_live import LiveInvestigator, worker_name
from bot.templates_store import packaged_docs, published_set
from bot.web.app import create_app
from tests.web.conftest import Clock, login
from tests.web.test_workspace import act, h, line_of, save

BLOCK = "identity_check"
API = f"/api/v1/workspace/blocks/{BLOCK}"
PAGE = f"/workspace/blocks/{BLOCK}"
PACKAGED = packaged_docs(Settings().templates_dir, "blocks")[BLOCK]
OLD_OPENING = "您好，我是{{ bank_name }}的智能语音助手，本次通话将全程录音。"
NEW_OPENING = "您好，这里是{{ bank_name }}的智能语音助手，本次通话将全程录音。"
CHANGED = PACKAGED.replace(OLD_OPENING, NEW_OPENING)
LANG_API = "/api/v1/workspace/languages/zh"
LANG = packaged_docs(Settings().templates_dir, "languages")["zh"]


def test_blocks_and_language_packs_are_listed_and_open(app_client: TestClient) -> None:
    assert OLD_OPENING in PACKAGED and CHANGED != PACKAGED
    login(app_client, "compliance")
    documents = app_client.get("/api/v1/workspace/documents").json()
    kinds = {(d["kind"], d["doc"]) for d in documents}
    assert {("blocks", BLOCK), ("blocks", "closings"), ("languages", "zh")} <= kinds
    index = app_client.get("/workspace").text
    assert f'href="{PAGE}"' in index and 'href="/workspace/languages/zh"' in index
    assert "语言包" in index and 'data-kind="languages"' in index
    for url in (PAGE, f"{PAGE}/edit", f"{PAGE}/versions/0", f"{PAGE}/versions/0/preview"):
        assert app_client.get(url).status_code == 200, url
    assert app_client.get(f"{API}/versions/0").json()["source"] == PACKAGED
    assert app_client.get("/api/v1/workspace/blocks/nope/versions").status_code == 404
    assert app_client.get("/workspace/rulesets/default/versions/0/preview").status_code == 404


def test_block_lint_locates_errors_in_the_block_and_in_the_scripts_it_breaks(
    app_client: TestClient,
) -> None:
    token = login(app_client, "compliance")
    ok = app_client.post(f"{API}/lint", json={"source": CHANGED}, headers=h(token)).json()
    assert ok == {"ok": True, "errors": [], "refused": []}
    leak = PACKAGED.replace(
        OLD_OPENING, "您好{{ holder_nam }}，本次通话将全程录音，我是智能语音助手。"
    )
    body = app_client.post(f"{API}/lint", json={"source": leak}, headers=h(token)).json()
    assert not body["ok"]
    mine = [e for e in body["errors"] if e["file"] == f"blocks/{BLOCK}.yaml"]
    assert mine and all(e["line"] == line_of(leak, "holder_nam") for e in mine)
    # the disclosure is checked in every script that opens with this block
    silent = PACKAGED.replace(OLD_OPENING, "您好，我是{{ bank_name }}。")
    body = app_client.post(f"{API}/lint", json={"source": silent}, headers=h(token)).json()
    assert any("disclosure" in e["message"] for e in body["errors"])
    # a node a script points at is gone: the error is the script's, at its line
    no_gate = PACKAGED.replace("params: [on_success]", "params: []").replace(
        "affirm: $on_success", "affirm: close_wrong_person"
    )
    body = app_client.post(f"{API}/lint", json={"source": no_gate}, headers=h(token)).json()
    assert any(e["file"].startswith("scripts/") for e in body["errors"]), body
    renamed = PACKAGED.replace(f"id: {BLOCK}", "id: other_block")
    body = app_client.post(f"{API}/lint", json={"source": renamed}, headers=h(token)).json()
    [first, *_] = body["errors"]
    assert first["field"] == "id" and first["line"] == 1 and BLOCK in first["message"]
    escape = PACKAGED.replace(OLD_OPENING, "{{ ''.__class__ }}")
    r = save(app_client, token, escape, API)
    assert r.status_code == 422 and r.json()["problems"]


def test_identical_drafts_are_refused_with_a_clear_message(
    app_client: TestClient, engine: Engine
) -> None:
    token = login(app_client, "compliance")
    r = save(app_client, token, PACKAGED, API)
    assert r.status_code == 409
    assert "identical to the published version (v0)" in r.json()["detail"]
    assert save(app_client, token, PACKAGED.rstrip() + "\n\n", API).status_code == 409
    form = app_client.post(f"{PAGE}/versions", data={"source": PACKAGED, "csrf_token": token})
    assert form.status_code == 409 and "此内容与已发布版本（v0）完全相同" in form.text
    assert "未保存任何内容" in form.text
    script = packaged_docs(Settings().templates_dir, "scripts")["dormant_short"]
    assert (
        save(app_client, token, script, "/api/v1/workspace/scripts/dormant_short").status_code
        == 409
    )
    with Session(engine) as s:
        assert s.exec(select(ScriptVersionRow)).all() == []
    # once a change is published, that text is the one refused
    number = save(app_client, token, CHANGED, API).json()["version"]["version"]
    act(app_client, token, number, "submit", API)
    act(app_client, login(app_client, "compliance2"), number, "approve", API)
    token = login(app_client, "compliance")
    again = save(app_client, token, CHANGED, API)
    assert again.status_code == 409 and f"(v{number})" in again.json()["detail"]
    assert save(app_client, token, PACKAGED, API).status_code == 201  # back to packaged


def test_a_block_is_published_under_four_eyes_with_the_diff_on_the_approval_screen(
    app_client: TestClient, engine: Engine
) -> None:
    token = login(app_client, "compliance")
    saved = save(app_client, token, CHANGED, API)
    assert saved.status_code == 201 and saved.json()["errors"] == []
    number = saved.json()["version"]["version"]
    assert number == 1 and saved.json()["version"]["kind"] == "blocks"
    assert act(app_client, token, number, "submit", API).json()["state"] == "pending"
    assert act(app_client, token, number, "approve", API).status_code == 403
    other = login(app_client, "compliance2")
    page = app_client.get(f"{PAGE}/versions/{number}").text
    assert 'id="ws-approve"' in page and "与已发布版本（v0）相比的改动" in page
    assert re.search(r'class="del">.*?我是', page, re.S) and re.search(
        r'class="add">.*?这里是', page, re.S
    )
    diff = app_client.get(f"{API}/versions/{number}/diff").json()
    assert diff["old"] == f"{BLOCK}@0" and any(line["op"] == "+" for line in diff["lines"])
    approved = app_client.post(f"{PAGE}/versions/{number}/approve", data={"csrf_token": other})
    assert approved.status_code == 303
    with Session(engine) as s:
        row = s.exec(select(ScriptVersionRow)).one()
        assert (row.script_id, row.state) == (f"blocks/{BLOCK}", "published")
        assert published_set(s).blocks == {BLOCK: CHANGED}
        assert published_set(s).scripts == {}
        events = [
            (e.actor, e.action, e.object_type, e.object_id)
            for e in s.exec(select(AuditEventRow)).all()
            if e.action.startswith(("template_", "self_approval"))
        ]
    ref = f"{BLOCK}@{number}"
    assert ("compliance", "self_approval_refused", "block", ref) in events
    assert ("compliance2", "template_published", "block", ref) in events
    overview = {
        (d["kind"], d["doc"]): d["published_version"]
        for d in app_client.get("/api/v1/workspace/documents").json()
    }
    assert overview[("blocks", BLOCK)] == number and overview[("scripts", "dormant_short")] == 0
    # scripts are now checked against the published block
    preview = app_client.get("/api/v1/workspace/scripts/dormant_short/versions/0/preview").json()
    [opening] = [p for p in preview["prompts"] if p["node"] == "opening"]
    assert opening["text"].startswith("您好，这里是")


def test_preview_links_each_prompt_to_its_document_and_line(app_client: TestClient) -> None:
    token = login(app_client, "compliance")
    number = save(app_client, token, CHANGED, API).json()["version"]["version"]
    shown = app_client.get(f"{API}/versions/{number}/preview").json()
    by_node = {(p["node"], p["label"]): p for p in shown["prompts"]}
    opening = by_node[("opening", "say")]
    line = line_of(CHANGED, "这里是")
    assert opening["file"] == f"blocks/{BLOCK}.yaml" and opening["line"] == line
    assert opening["edit_url"] == f"{PAGE}/edit?from={number}#L{line}"
    assert opening["script"] and "这里是示例银行" in opening["text"]
    assert all(p["file"] == f"blocks/{BLOCK}.yaml" for p in shown["prompts"])
    # a script's prompts are all written in the blocks it includes: each links to the
    # block's editor (the published text, whose lines the preview shows)
    script = app_client.get("/api/v1/workspace/scripts/dormant_short/versions/0/preview").json()
    files = {p["file"] for p in script["prompts"]}
    assert f"blocks/{BLOCK}.yaml" in files and "blocks/closings.yaml" in files
    for p in script["prompts"]:
        folder, doc = p["file"].removesuffix(".yaml").split("/")
        expected = f"/workspace/{folder}/{doc}/edit"
        if folder == "scripts":
            expected += "?from=0"
        assert p["edit_url"] == expected + (f"#L{p['line']}" if p["line"] else ""), p
    page = app_client.get(f"{PAGE}/versions/{number}/preview").text
    assert f'href="{PAGE}/edit?from={number}#L{line}"' in page
    editor = app_client.get(f"{PAGE}/edit?from={number}").text
    assert "这里是{{ bank_name }}" in editor and "#L" in open_js()


def open_js() -> str:
    from bot.settings import REPO_ROOT

    return (REPO_ROOT / "bot" / "web" / "static" / "workspace.js").read_text("utf-8")


def test_a_language_pack_is_checked_previewed_and_published(
    app_client: TestClient, engine: Engine
) -> None:
    token = login(app_client, "compliance")
    bad = LANG.replace("耽误您几分钟。", "耽误您{minutes}分钟。")
    body = app_client.post(f"{LANG_API}/lint", json={"source": bad}, headers=h(token)).json()
    [error] = body["errors"]
    assert error["field"] == "replies.ask_who" and error["line"] == line_of(bad, "{minutes}")
    renamed = LANG.replace("language: zh", "language: en")
    body = app_client.post(f"{LANG_API}/lint", json={"source": renamed}, headers=h(token)).json()
    assert body["errors"][0]["field"] == "language"
    politer = LANG.replace("耽误您几分钟。", "耽误您几分钟，谢谢。")
    number = save(app_client, token, politer, LANG_API).json()["version"]["version"]
    shown = app_client.get(f"{LANG_API}/versions/{number}/preview").json()
    ask = next(p for p in shown["prompts"] if p["label"] == "replies.ask_who")
    assert "示例银行" in ask["text"] and ask["text"].endswith("谢谢。")
    assert ask["edit_url"] == f"/workspace/languages/zh/edit?from={number}#L{ask['line']}"
    assert act(app_client, token, number, "submit", LANG_API).status_code == 200
    other = login(app_client, "compliance2")
    assert act(app_client, other, number, "approve", LANG_API).json()["state"] == "published"
    with Session(engine) as s:
        assert published_set(s).languages == {"zh": politer}


def test_evaluation_streams_its_progress_and_keeps_the_result(
    app_client: TestClient, engine: Engine
) -> None:
    token = login(app_client, "compliance")
    number = save(app_client, token, CHANGED, API).json()["version"]["version"]
    page = app_client.get(f"{PAGE}/versions/{number}/evaluation").text
    assert 'id="ws-evaluate"' in page and 'id="ws-progress"' in page
    assert f"{API}/versions/{number}/evaluate?stream=true" in page
    r = app_client.post(
        f"{API}/versions/{number}/evaluate?stream=true",
        json={"sets": ["public"], "personas": ["p01_salary_owner", "p02_lent_to_friend"]},
        headers=h(token),
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    steps = [json.loads(line) for line in r.text.splitlines()]
    assert [s["done"] for s in steps] == [0, 1, 2, 3, 4, 4]
    assert [s["percent"] for s in steps] == [0, 25, 50, 75, 100, 100]
    assert steps[-1]["finished"] is True and all(s["total"] == 4 for s in steps)
    stored = app_client.get(f"{API}/versions/{number}/evaluation").json()
    assert (
        stored["version"]["summary"]["n"] == 2 and stored["published"]["label"] == "v0 (published)"
    )
    refused = app_client.post(
        f"{API}/versions/{number}/evaluate?stream=true", json={"sets": ["nope"]}, headers=h(token)
    )
    assert refused.status_code == 422


def test_the_front_page_says_which_templates_the_bot_runs(
    app_client: TestClient, engine: Engine, clock: Clock, tmp_path: Path
) -> None:
    login(app_client, "compliance")
    files = app_client.get("/workspace").text
    assert "安装包自带的文件" in files and "templates_source = files" in files
    assert 'data-source="files"' in files

    settings = Settings(templates_source="database", data_dir=tmp_path, intent_model_enabled=False)
    app = create_app(settings, engine, clock=clock)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        token = login(client, "compliance")
        page = client.get("/workspace").text
        assert "已发布的版本（templates_source = database）" in page
        assert "10 秒内" in page and "尚无外呼进程报告已加载话术集" in page
        worker = build_investigator(settings, engine)  # what a worker starts with
        assert isinstance(worker, LiveInvestigator)
        page = client.get("/workspace").text
        assert worker_name() in page and worker.digest[:12] in page and 'data-current="1"' in page
        number = save(client, token, CHANGED, API).json()["version"]["version"]
        act(client, token, number, "submit", API)
        act(client, login(client, "compliance2"), number, "approve", API)
        page = client.get("/workspace").text
        assert 'data-current="0"' in page and "旧话术集" in page and worker.digest[:12] in page
