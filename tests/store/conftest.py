"""PII keys in the process settings, as workers, the dashboard, ``bot db`` and the
migrations read them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.settings import get_settings
from tests.store.pii_helpers import new_key


@pytest.fixture
def pii_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A key in ``BOT_PII__KEY``."""
    key = new_key()
    monkeypatch.setenv("BOT_PII__KEY", key)
    get_settings.cache_clear()
    yield key
    get_settings.cache_clear()


@pytest.fixture
def no_pii_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No key configured: the originals are not kept."""
    monkeypatch.delenv("BOT_PII__KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
