"""Compliance edits a script in the browser (lint shown inline as they type), submits it,
and a second person approves and publishes it; a block edited and approved the same way
is used by a running worker's next call."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import build_investigator
from bot.settings import Settings
from tests.browser.conftest import Live, screenshot, sign_in
from tests.conftest import make_account

pytestmark = pytest.mark.slow

DOC = "/workspace/scripts/dormant_short"


def published_version(page: Any) -> int:
    """The published version the document page's "new draft" button starts from."""
    return int(page.get_attribute("#ws-new-draft", "data-published"))


def state(page: Any) -> str:
    """The version page's state (its value; the label is in the page's language)."""
    return str(page.get_attribute("h1 .ws-state", "data-state"))


NO_PROBLEMS = "document.getElementById('ws-status').dataset.problems === '0'"


def test_edit_lint_submit_and_a_second_person_publishes(page: Any, live: Live) -> None:
    sign_in(page, live.url, "compliance")
    page.click("header nav a[href='/workspace']")
    screenshot(page, "workspace")
    page.click(f"a[href='{DOC}']")
    published_before = published_version(page)
    page.click(f"a[href='{DOC}/edit']")
    original = page.input_value("#ws-source")
    assert original.startswith("id: dormant_short")

    broken = original + "  - block: [never closed\n"
    page.fill("#ws-source", broken)
    bad_line = broken.count("\n")
    page.wait_for_selector("#ws-gutter .bad", timeout=10_000)  # lint as you type
    # the YAML parser notices the unclosed list where the input ends: that line or the next
    assert int(page.locator("#ws-gutter .bad").first.inner_text()) in (bad_line, bad_line + 1)
    assert "个问题" in page.inner_text("#ws-status")  # Chinese by default
    problem = page.locator("#ws-problems li").first.inner_text()
    # translated by the editor's script from the lint answer's message id
    assert problem.startswith("scripts/dormant_short.yaml:") and "YAML 格式错误：" in problem
    screenshot(page, "workspace-editor-lint")

    edited = original.replace("（简版，低风险）", "（简版，低风险，浏览器测试）")
    assert edited != original
    page.fill("#ws-source", edited)
    page.wait_for_function(NO_PROBLEMS, timeout=10_000)
    assert page.inner_text("#ws-status") == "没有问题"
    page.click("#ws-form button[type=submit]")
    page.wait_for_url(re.compile(rf".*{DOC}/versions/\d+$"))
    version_url = page.url
    assert state(page) == "draft" and page.inner_text("h1 .ws-state") == "草稿"
    page.click("#ws-submit")
    page.wait_for_load_state("networkidle")
    assert state(page) == "pending" and page.inner_text("h1 .ws-state") == "待审批"
    assert page.locator("#ws-approve").count() == 0  # not by its author
    assert "等待第二人审批" in page.inner_text("#ws-waiting")

    sign_in(page, live.url, "compliance2")
    page.goto(version_url)
    page.click("#ws-approve")
    page.wait_for_load_state("networkidle")
    assert state(page) == "published" and page.inner_text("h1 .ws-state") == "已发布"
    assert "由 compliance2 于" in page.inner_text("#ws-provenance")
    page.goto(f"{live.url}{DOC}")
    published_now = published_version(page)
    assert published_now > published_before
    assert version_url.endswith(f"/versions/{published_now}")


BLOCK = "/workspace/blocks/identity_check"


def test_a_block_edited_and_approved_is_used_by_the_next_call_without_a_restart(
    page: Any, live: Live, tmp_path: Path
) -> None:
    # a worker running the published set, already started (reload interval: 10 ms)
    settings = Settings(
        templates_source="database",
        templates_reload_s=0.01,
        data_dir=tmp_path,
        intent_model_enabled=False,
    )
    worker = build_investigator(settings, live.engine)
    account = make_account(scenario="dormant")

    def next_call_opening() -> str:
        return str(worker.dialogue(account, "dormant_short").start().text)

    assert next_call_opening().startswith("您好，我是示例银行")

    sign_in(page, live.url, "compliance")
    page.goto(f"{live.url}/workspace")
    page.click(f"a[href='{BLOCK}']")
    page.click(f"a[href='{BLOCK}/edit']")
    original = page.input_value("#ws-source")
    assert original.startswith("id: identity_check") and "您好，我是" in original
    page.fill("#ws-source", original)  # unchanged: refused, nothing saved
    page.click("#ws-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "此内容与已发布版本" in page.inner_text("main")
    page.fill("#ws-source", original.replace("您好，我是", "您好，这里是", 1))
    page.wait_for_function(NO_PROBLEMS, timeout=10_000)
    page.click("#ws-form button[type=submit]")
    page.wait_for_url(re.compile(rf".*{BLOCK}/versions/\d+$"))
    version_url = page.url
    number = version_url.rsplit("/", 1)[1]
    page.click("#ws-preview")
    link = page.locator("a.ws-edit").first
    assert f"{BLOCK}/edit?from={number}#L" in str(link.get_attribute("href"))
    assert "这里是示例银行" in page.inner_text("table.ws-prompts")
    screenshot(page, "workspace-block-preview")
    link.click()  # the editor opens at the prompt's line
    page.wait_for_function("document.getElementById('ws-source').selectionEnd > 0", timeout=10_000)
    selected = page.evaluate(
        "(() => { const t = document.getElementById('ws-source');"
        " return t.value.slice(t.selectionStart, t.selectionEnd); })()"
    )
    assert "这里是" in selected
    page.goto(version_url)
    page.click("#ws-submit")
    page.wait_for_load_state("networkidle")
    assert state(page) == "pending"

    sign_in(page, live.url, "compliance2")
    page.goto(version_url)
    assert "这里是" in page.inner_text(".ws-approval-diff tr.add")  # the diff, where one approves
    screenshot(page, "workspace-block-approval")
    page.click("#ws-approve")
    page.wait_for_load_state("networkidle")
    assert state(page) == "published"

    time.sleep(0.02)  # past the worker's reload interval
    assert next_call_opening().startswith("您好，这里是示例银行")
