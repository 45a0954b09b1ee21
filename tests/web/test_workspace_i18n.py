"""The workspace shows a document's problems in the page's language (Chinese by default,
English with ?lang=en), in the HTML and in what the editor's script translates; the API
keeps the English message beside its message id and values."""

from __future__ import annotations

import html
import json
import re

from fastapi.testclient import TestClient

from tests.web.conftest import login
from tests.web.test_workspace import PAGE, h, save, with_greeting

BLOCK_API = "/api/v1/workspace/blocks/q_occupation"
BLOCK_PAGE = "/workspace/blocks/q_occupation"
QUESTION = "在哪里上班？"


def _script_block(page: str, element_id: str) -> object:
    found = re.search(
        rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S
    )
    assert found, element_id
    return json.loads(html.unescape(found.group(1)))


def test_a_broken_script_shows_its_problem_in_the_page_language(app_client: TestClient) -> None:
    token = login(app_client, "compliance")
    broken = with_greeting("您好{{ nobody }}。")
    assert save(app_client, token, broken).status_code == 201
    zh = app_client.get(f"{PAGE}/versions/1").text
    assert "未知的变量“nobody”" in zh and "unknown variable" not in zh
    en = app_client.get(f"{PAGE}/versions/1?lang=en").text
    assert "unknown variable &#39;nobody&#39;" in en and "未知的变量" not in en
    # the editor: its list in English now (the cookie), its script has nothing to translate
    editor = app_client.get(f"{PAGE}/edit?from=1").text
    assert "unknown variable &#39;nobody&#39;" in editor
    assert _script_block(editor, "ws-messages") == {}
    editor = app_client.get(f"{PAGE}/edit?from=1&lang=zh").text
    assert "未知的变量“nobody”" in editor
    catalogue = _script_block(editor, "ws-messages")
    assert isinstance(catalogue, dict)
    assert catalogue["unknown variable '%(variable)s'"] == "未知的变量“%(variable)s”"
    [initial] = _script_block(editor, "ws-initial")  # type: ignore[misc]
    assert initial["template"] == "unknown variable '%(variable)s'"
    assert initial["params"] == {"variable": "nobody"}


def test_the_lint_api_keeps_english_with_the_message_id_and_nested_values(
    app_client: TestClient,
) -> None:
    token = login(app_client, "compliance")
    source = app_client.get(f"{BLOCK_API}/versions/0").json()["source"]
    assert QUESTION in source
    broken = source.replace(QUESTION, QUESTION + "{{ nobody }}")
    body = app_client.post(f"{BLOCK_API}/lint", json={"source": broken}, headers=h(token)).json()
    problem = body["errors"][0]
    script = problem["params"]["script"]
    assert problem["message"] == f"unknown variable 'nobody' (in script {script})"
    assert problem["template"] == "%(problem)s (in script %(script)s)"
    assert problem["params"]["problem"] == {
        "template": "unknown variable '%(variable)s'",
        "params": {"variable": "nobody"},
    }
    escape = source.replace(QUESTION, QUESTION + "{{ ''.__class__ }}")
    refused = app_client.post(f"{BLOCK_API}/lint", json={"source": escape}, headers=h(token)).json()
    assert refused["refused"][0]["template"] == "access to the internal attribute '%(name)s'"
    assert refused["refused"][0]["message"] == "access to the internal attribute '__class__'"


def test_a_block_problem_names_its_script_in_chinese(app_client: TestClient) -> None:
    token = login(app_client, "compliance")
    source = app_client.get(f"{BLOCK_API}/versions/0").json()["source"]
    broken = source.replace(QUESTION, QUESTION + "{{ nobody }}")
    r = save(app_client, token, broken, api=BLOCK_API)
    assert r.status_code == 201
    number = r.json()["version"]["version"]
    page = app_client.get(f"{BLOCK_PAGE}/versions/{number}").text
    assert re.search(r"未知的变量“nobody”（在话术脚本 \w+ 中）", page), page
    en = app_client.get(f"{BLOCK_PAGE}/versions/{number}?lang=en").text
    assert re.search(r"unknown variable &#39;nobody&#39; \(in script \w+\)", en)


def test_a_rule_of_the_script_model_is_translated_and_a_parser_message_kept(
    app_client: TestClient,
) -> None:
    token = login(app_client, "compliance")
    two_kinds = with_greeting(extra="  odd:\n    say: 甲\n    next: opening\n    end: completed\n")
    assert save(app_client, token, two_kinds).status_code == 201
    zh = app_client.get(f"{PAGE}/versions/1").text
    assert "节点须且只能设置以下一种" in zh
    en = app_client.get(f"{PAGE}/versions/1?lang=en").text
    assert "a node needs exactly one of" in en
    bad_yaml = with_greeting().replace("start: hello", "start: [hello")
    assert save(app_client, token, bad_yaml).status_code == 201
    zh = app_client.get(f"{PAGE}/versions/2?lang=zh").text
    assert "YAML 格式错误：" in zh  # our prefix translated, PyYAML's reason as it is
    assert re.search(r"YAML 格式错误：[^<]*expected", zh)
