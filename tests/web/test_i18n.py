"""The dashboard speaks Simplified Chinese by default and English on request: every
message the pages use has a Chinese translation, the locale is chosen from ?lang=, its
cookie, Accept-Language and the setting in that order, vocabulary values are shown with
their labels, dates and numbers in the locale's format."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from bot.settings import Settings
from bot.web import i18n
from bot.web.app import create_app
from bot.web.config import WebSettings
from bot.web.i18n_catalog import messages, missing
from bot.web.labels import LABELS, label
from tests.web.conftest import Clock, login


def test_every_message_has_a_chinese_translation() -> None:
    found = {m for m, _ in messages()}
    assert len(found) > 80 and "Sign out" in found and "Suspend non-counter transactions" in found
    assert missing("zh_CN") == []


def test_placeholders_survive_translation() -> None:
    """A translation that drops or renames a %(name)s placeholder would raise or lose
    data at render time."""
    import re

    zh = i18n.translations("zh_CN")
    for message, _where in messages():
        wanted = set(re.findall(r"%\((\w+)\)s", message))
        assert set(re.findall(r"%\((\w+)\)s", zh.gettext(message))) == wanted, message


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "want"),
    [
        (None, None, None, "zh_CN"),
        ("en", None, "zh-CN", "en"),
        (None, "en", "zh-CN,zh;q=0.9", "en"),
        ("zh", "en", None, "zh_CN"),
        (None, None, "en-US,en;q=0.9,zh;q=0.8", "en"),
        (None, None, "fr-FR,zh-TW;q=0.9", "zh_CN"),  # nothing supported: the default
        (None, None, "de;q=0.5,zh-Hans-CN;q=0.9", "zh_CN"),
        ("xx", "bogus", "en;q=abc", "zh_CN"),
    ],
)
def test_the_locale_is_chosen_in_order(
    query: str | None, cookie: str | None, accept: str | None, want: str
) -> None:
    assert i18n.choose(query, cookie, accept, "zh_CN") == want


def test_labels_dates_and_numbers_follow_the_locale() -> None:
    zh = i18n.context("zh_CN", ZoneInfo("Asia/Shanghai"))
    en = i18n.context("en", ZoneInfo("Asia/Shanghai"))
    assert zh["label"]("disposition", "suspend_non_counter") == "暂停非柜面交易"
    assert en["label"]("disposition", "suspend_non_counter") == "Suspend non-counter transactions"
    assert zh["label"]("outcome", "something_new") == "something_new"  # unknown: as is
    assert label("band", None) == "–"
    noon_utc = dt.datetime(2026, 12, 3, 4, 5, tzinfo=dt.UTC)
    assert zh["when"](noon_utc) == "2026-12-03 12:05"  # in web.timezone
    assert zh["number"](1234567) == "1,234,567" and en["percent"](0.256) == "25.6%"
    assert all(v for kind in LABELS.values() for v in kind.values())


def test_pages_are_chinese_by_default_and_english_on_request(
    engine: Engine, clock: Clock, users: dict[str, int]
) -> None:
    client = TestClient(create_app(Settings(), engine, clock=clock), base_url="https://testserver")
    login(client, "supervisor")
    zh = client.get("/monitor")
    assert '<html lang="zh-CN">' in zh.text and "外呼任务监控" in zh.text and ">退出<" in zh.text
    en = client.get("/monitor?lang=en")
    assert '<html lang="en">' in en.text and "Campaign monitor" in en.text
    assert en.cookies.get(i18n.LANG_COOKIE) == "en" or client.cookies.get(i18n.LANG_COOKIE) == "en"
    again = client.get("/")  # remembered
    assert '<html lang="en">' in again.text and "Welcome, supervisor" in again.text
    assert client.get("/?lang=zh").text.count("欢迎，supervisor") == 1


def test_the_default_locale_is_a_setting(engine: Engine, clock: Clock) -> None:
    app = create_app(Settings(web=WebSettings(default_locale="en")), engine, clock=clock)
    page = TestClient(app, base_url="https://testserver").get("/login")
    assert '<html lang="en">' in page.text and ">Sign in<" in page.text
    chinese_browser = TestClient(app, base_url="https://testserver").get(
        "/login", headers={"Accept-Language": "zh-CN"}
    )
    assert ">登录<" in chinese_browser.text
