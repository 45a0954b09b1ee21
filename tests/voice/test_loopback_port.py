"""``BOT_VOICE__PORT`` (and ``BOT_VOICE__HOST``) decide where the loopback gateway's
media server listens, as they do for ``bot call``; a port that is taken is an error
at once, not a hung worker."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
import websockets.sync.client as ws_client

from bot.settings import Settings
from bot.voice.loopback import LoopbackGateway
from tests.conftest import free_port
from tests.voice.light import light_stack


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def gateway_from_env(tmp_path: Path) -> LoopbackGateway:
    """The gateway as ``bot worker --gateway loopback`` builds it: over the stack built
    from ``Settings()``, whose ``voice`` comes from the environment."""
    return LoopbackGateway(light_stack(tmp_path, Settings().voice), {}, tmp_path)


def test_the_loopback_gateway_listens_on_bot_voice_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("BOT_VOICE__PORT", str(port))
    monkeypatch.setenv("BOT_VOICE__HOST", "127.0.0.1")
    gateway = gateway_from_env(tmp_path)
    try:
        assert gateway.media_url == f"ws://127.0.0.1:{port}/media"
        # it is really there: a stream that sends no start is refused by our server
        with ws_client.connect(gateway.media_url, open_timeout=10) as ws:
            ws.send("not json")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    finally:
        gateway.close()


def test_without_a_port_any_free_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOT_VOICE__PORT", raising=False)
    gateway = gateway_from_env(tmp_path)
    try:
        port = int(gateway.media_url.rsplit(":", 1)[1].split("/")[0])
        assert port > 0
    finally:
        gateway.close()


def test_a_taken_port_is_an_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    monkeypatch.setenv("BOT_VOICE__PORT", str(taken_port))
    with pytest.raises(OSError, match=f"127.0.0.1:{taken_port}"):
        gateway_from_env(tmp_path)
