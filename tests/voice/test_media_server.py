"""The media WebSocket server refuses every malformed stream start with a proper close
code and reason, over a real WebSocket to the real server (uvicorn, ``/media``), and
goes on serving: the next, valid connection is a whole call through the pipeline.

The stack is light (:mod:`tests.voice.light`), so this runs without the installed models.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from bot.core.vocab import Outcome
from bot.sim.phone import Behaviour, PhoneCallee
from bot.voice.config import VoiceSettings
from bot.voice.loopback import LoopbackLine
from bot.voice.server import VoiceServer
from tests.conftest import make_account
from tests.voice.light import light_stack

pytestmark = pytest.mark.anyio


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """What uvicorn logs as errors ("Exception in ASGI application": an unhandled one).
    Its loggers do not propagate to pytest's capture, so listen on them directly."""
    handler = Collect()
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "bot.voice.server")]
    for lg in loggers:
        lg.addHandler(handler)
    yield handler.records
    for lg in loggers:
        lg.removeHandler(handler)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[VoiceServer]:
    settings = VoiceSettings(start_timeout_s=1.0, media_timeout_s=5.0, record=False)
    async with VoiceServer(light_stack(tmp_path, settings)) as srv:
        yield srv


def start(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "streamSid": "MZ1",
        "callSid": "CA1",
        "customParameters": {"call_key": "nobody-dialled-this"},
    }
    body.update(over)
    return {"event": "start", "streamSid": "MZ1", "start": {k: v for k, v in body.items() if v}}


CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

#: (what the gateway sends after ``connected``, close code, words of the reason)
MALFORMED: dict[str, tuple[str | bytes | None, int, str]] = {
    "not-json": ("hello", 1007, "not JSON"),
    "truncated-json": ('{"event": "start", "start": {', 1007, "not JSON"),
    "json-array": ('[{"event": "start"}]', 1007, "JSON object"),
    "json-null": ("null", 1007, "JSON object"),
    "json-number": ("42", 1007, "JSON object"),
    "json-string": ('"start"', 1007, "JSON object"),
    "nested-too-deep": ("[" * 100_000 + "]" * 100_000, 1007, "not JSON"),
    "binary-frame": (b"\xff\x00\x10", 1003, "binary"),
    "binary-json": (json.dumps(start()).encode(), 1003, "binary"),
    "event-not-a-string": (json.dumps({"event": ["start"]}), 1007, "'event'"),
    "media-before-start": (
        json.dumps({"event": "media", "media": {"payload": "//8="}}),
        1008,
        "expected a 'start'",
    ),
    "stop-before-start": (json.dumps({"event": "stop"}), 1008, "expected a 'start'"),
    "start-without-body": (json.dumps({"event": "start"}), 1008, "without a 'start'"),
    "start-body-a-list": (json.dumps({"event": "start", "start": [1]}), 1007, "object"),
    "no-streamSid": (
        json.dumps({"event": "start", "start": start(streamSid=None)["start"]}),
        1008,
        "no stream id",
    ),
    "no-callSid": (json.dumps(start(callSid=None)), 1008, "no call id"),
    "no-customParameters": (json.dumps(start(customParameters=None)), 1008, "call_key"),
    "streamSid-a-number": (json.dumps(start(streamSid=12)), 1007, "stream id"),
    "callSid-an-object": (json.dumps(start(callSid={"a": 1})), 1007, "call id"),
    "parameters-a-list": (json.dumps(start(customParameters=["a"])), 1007, "customParameters"),
    "parameter-nested": (
        json.dumps(start(customParameters={"call_key": {"x": 1}})),
        1007,
        "customParameters",
    ),
    "unknown-call": (json.dumps(start()), 1008, "unknown call"),
    "no-start-in-time": (None, 1008, "no 'start'"),
}


async def close_of(url: str, data: str | bytes | None) -> tuple[int | None, str]:
    """Send ``connected`` then ``data``; the close code and reason the server sent."""
    async with websockets.connect(url, max_size=2**22) as ws:
        await ws.send(CONNECTED)
        if data is not None:
            await ws.send(data)
        try:
            message = await asyncio.wait_for(ws.recv(), 20)
        except websockets.ConnectionClosed as exc:
            received = exc.rcvd
            return (received.code, received.reason) if received else (None, "")
        raise AssertionError(f"the server answered instead of closing: {message!r}")


async def a_valid_call(server: VoiceServer) -> None:
    """A whole call: the callee hangs up once the identity question has played."""
    account = make_account()
    call = await LoopbackLine(server).call(
        account, PhoneCallee({}, Behaviour(hang_up_on="identity", reaction_s=0.0))
    )
    assert call.callee.marks[:1] == ["identity"] and call.callee.bot_audio_s > 0
    assert call.voice.result.record.outcome is Outcome.HUNG_UP and call.voice.error is None
    assert call.voice.said  # the bot spoke: the pipeline ran
    assert server.live_sessions == 0 and len(server.book) == 0


@pytest.mark.parametrize(("data", "code", "words"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_start_is_closed_with_a_code_and_a_reason(
    server: VoiceServer,
    server_errors: list[logging.LogRecord],
    data: str | bytes | None,
    code: int,
    words: str,
) -> None:
    got, reason = await close_of(server.media_url, data)
    assert (got, words in reason) == (code, True), (got, reason)
    assert len(reason.encode()) <= 123
    assert not server_errors, [r.getMessage() for r in server_errors]


async def test_the_server_serves_a_valid_call_after_every_malformed_start(
    server: VoiceServer, server_errors: list[logging.LogRecord]
) -> None:
    for name, (data, code, _words) in MALFORMED.items():
        got, reason = await close_of(server.media_url, data)
        assert got == code, (name, got, reason)
    await a_valid_call(server)
    assert not server_errors, [r.getMessage() for r in server_errors]
