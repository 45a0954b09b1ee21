"""The loopback callee speaks the Twilio Media Streams protocol as Twilio does: checked
against a scripted bot on a real local WebSocket (no models involved)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets

from bot.sim.phone import FRAME_BYTES, Behaviour, Clip, PhoneCallee

pytestmark = pytest.mark.anyio

LOUD = bytes([0x10]) * 8000  # one second of loud mu-law: the callee's "answer"


class ScriptedBot:
    """Accepts one stream, records what the callee sends, runs ``script(ws)``."""

    def __init__(self, script: Callable[[Any], Awaitable[None]]) -> None:
        self.script = script
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.t0 = 0.0

    async def handler(self, ws: Any) -> None:
        self.t0 = time.monotonic()
        reader = asyncio.create_task(self._read(ws))
        await self.script(ws)
        await asyncio.sleep(0.2)
        reader.cancel()

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self.received.append((time.monotonic() - self.t0, json.loads(raw)))
        except websockets.ConnectionClosed:
            pass

    def events(self, name: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.received if m["event"] == name]


async def run_call(
    script: Callable[[Any], Awaitable[None]], callee: PhoneCallee
) -> tuple[ScriptedBot, Any]:
    bot = ScriptedBot(script)
    async with websockets.serve(bot.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        log = await callee.run(f"ws://127.0.0.1:{port}", "key-1")
    return bot, log


async def send_prompt(ws: Any, seconds: float, topic: str) -> None:
    """Like pipecat: the prompt's audio faster than real time, then the mark."""
    chunk = base64.b64encode(b"\xff" * FRAME_BYTES).decode()
    for _ in range(int(seconds / 0.02)):
        await ws.send(
            json.dumps({"event": "media", "streamSid": "MZ", "media": {"payload": chunk}})
        )
        await asyncio.sleep(0.01)
    await ws.send(json.dumps({"event": "mark", "streamSid": "MZ", "mark": {"name": topic}}))


async def test_start_carries_the_call_key_and_media_flows_every_20_ms() -> None:
    async def script(ws: Any) -> None:
        await asyncio.sleep(1.0)
        await ws.close()

    bot, log = await run_call(script, PhoneCallee({}))
    events = [m["event"] for _, m in bot.received]
    assert events[:2] == ["connected", "start"]
    start = bot.received[1][1]["start"]
    assert start["customParameters"] == {"call_key": "key-1"}
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    media = bot.events("media")
    assert 40 <= len(media) <= 55  # one per 20 ms, in real time
    assert all(len(base64.b64decode(m["media"]["payload"])) == FRAME_BYTES for _, m in media)
    assert log.closed_by_bot and not log.hung_up


async def test_answers_the_marked_topic_after_the_prompt_has_played() -> None:
    async def script(ws: Any) -> None:
        await send_prompt(ws, 1.0, "identity")
        await asyncio.sleep(2.5)
        await ws.close()

    clip = Clip("是我", LOUD)
    callee = PhoneCallee({"identity": clip, "default": None}, Behaviour(reaction_s=0.3))
    bot, log = await run_call(script, callee)
    loud = [t for t, m in bot.events("media") if base64.b64decode(m["media"]["payload"])[0] == 0x10]
    # the prompt (1 s of audio, sent in 0.5 s) plays out first, then 0.3 s of reaction
    assert loud and 1.2 <= loud[0] <= 1.6
    assert 0.9 <= loud[-1] - loud[0] <= 1.1  # the whole second of the answer
    echo = bot.events("mark")
    assert echo and echo[0][1]["mark"]["name"] == "identity" and 0.9 <= echo[0][0] <= 1.3
    assert log.marks == ["identity"] and log.turns[0].text == "是我"


async def test_a_topic_without_an_answer_is_silence() -> None:
    async def script(ws: Any) -> None:
        await send_prompt(ws, 0.2, "occupation")
        await asyncio.sleep(1.0)
        await ws.close()

    bot, log = await run_call(
        script, PhoneCallee({"occupation": None, "default": Clip("好", LOUD)})
    )
    payloads = {base64.b64decode(m["media"]["payload"])[0] for _, m in bot.events("media")}
    assert payloads == {0xFF} and not log.turns


async def test_hang_up_sends_stop_then_closes() -> None:
    async def script(ws: Any) -> None:
        await send_prompt(ws, 0.2, "card_purpose")
        await asyncio.sleep(2.0)

    bot, log = await run_call(script, PhoneCallee({}, Behaviour(hang_up_on="card_purpose")))
    assert bot.events("stop") and log.hung_up and not log.closed_by_bot


async def test_keys_are_pressed_as_dtmf_events() -> None:
    async def script(ws: Any) -> None:
        await send_prompt(ws, 0.2, "identity")
        await asyncio.sleep(1.2)
        await ws.close()

    bot, _ = await run_call(script, PhoneCallee({}, Behaviour(dtmf={"identity": "12"})))
    assert [m["dtmf"]["digit"] for _, m in bot.events("dtmf")] == ["1", "2"]


async def test_clear_drops_the_rest_of_the_prompt() -> None:
    def script(clear: bool) -> Any:
        async def run(ws: Any) -> None:
            await send_prompt(ws, 2.0, "identity")  # 2 s of audio, sent in 1 s
            if clear:
                await ws.send(json.dumps({"event": "clear", "streamSid": "MZ"}))
            await asyncio.sleep(2.5)
            await ws.close()

        return run

    async def first_answer(clear: bool) -> tuple[float, int]:
        callee = PhoneCallee({"identity": Clip("是我", LOUD[:1600])}, Behaviour(reaction_s=0.2))
        bot, log = await run_call(script(clear), callee)
        media = bot.events("media")
        loud = [t for t, m in media if base64.b64decode(m["media"]["payload"])[0] == 0x10]
        assert loud, "the callee never answered"
        return loud[0], log.clears

    # The same call with and without the clear, in one run: the cleared prompt is
    # answered before the uncleared one (which waits for the whole playout).
    cleared, clears = await first_answer(True)
    played, no_clears = await first_answer(False)
    assert (clears, no_clears) == (1, 0) and cleared < played
