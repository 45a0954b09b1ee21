"""Fixtures: the fake Twilio (its own thread and loop, like the real remote service) and
our FastAPI app served by uvicorn on the test's own event loop, where the board lives."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from bot.telephony.config import TwilioSettings
from tests.telephony.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

STREAM_URL = "wss://bot.example.test/media"


@pytest.fixture(scope="session")
def _fake_twilio_server() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def fake_twilio(_fake_twilio_server: FakeTwilio) -> FakeTwilio:
    """The shared fake, emptied for this test."""
    _fake_twilio_server.reset()
    return _fake_twilio_server


def make_settings(base_url: str, public_base_url: str, **over: object) -> TwilioSettings:
    data: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": SecretStr(AUTH_TOKEN),
        "from_number": FROM_NUMBER,
        "base_url": base_url,
        "public_base_url": public_base_url,
        "stream_url": STREAM_URL,
        "request_timeout_s": 2.0,
        "retry_base_s": 0.01,
        "retry_cap_s": 0.05,
    }
    data.update(over)
    return TwilioSettings.model_validate(data)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


class _InLoopServer(uvicorn.Server):
    """uvicorn without its signal handlers (they belong to pytest here), noticing
    ``should_exit`` within milliseconds rather than its 0.1 s tick."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def main_loop(self) -> None:
        while not self.should_exit:
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def serve(app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    """Serve ``app`` on ``sock`` from the current event loop until the block ends."""
    server = _InLoopServer(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.002)
    try:
        yield
    finally:
        server.should_exit = True
        await task
