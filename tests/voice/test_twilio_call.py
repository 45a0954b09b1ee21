"""A call through the Twilio adapter end to end, against the local fake Twilio: REST
dial, signed status callbacks, the TwiML ``<Stream>`` that the "answered phone" connects
to our media endpoint, the dialogue, and the hang-up through the REST API."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.core.vocab import Outcome
from bot.sim.phone import Behaviour, PhoneCallee, persona_clips
from bot.telephony.dialer import CallStatusBoard
from bot.telephony.twilio_rest import TwilioDialer
from bot.telephony.webhooks import twilio_router
from bot.voice.server import VoiceServer
from bot.voice.session import VoiceStack
from bot.voice.telephony_gateway import RingPolicy, TelephonyCaller
from bot.voice.tts.cache import PromptCache
from tests.telephony.conftest import free_socket, make_settings
from tests.telephony.fake_twilio import FakeCall, FakeTwilio
from tests.voice.conftest import AUDIO, persona

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

ANSWERS = "+8613800000006"  # a person answers and stays on until we hang up
BUSY = "+8613800000003"
MACHINE = "+8613800000005"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as f:
        yield f


@pytest.fixture
async def caller(
    fake: FakeTwilio, stack_and_cache: tuple[VoiceStack, PromptCache]
) -> AsyncIterator[TelephonyCaller]:
    fake.reset()
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    public = f"http://127.0.0.1:{port}"
    tw = make_settings(fake.base_url, public, stream_url=f"ws://127.0.0.1:{port}/media")
    board = CallStatusBoard()
    server = VoiceServer(stack_and_cache[0], port=port)
    server.app.include_router(twilio_router(tw, board))
    dialer = TwilioDialer(tw)
    async with server:
        yield TelephonyCaller(server, dialer, board, tw.stream_url, RingPolicy(5, 5))
    await dialer.aclose()


def phone_answered_by(clips: dict, behaviour: Behaviour):  # type: ignore[no-untyped-def,type-arg]
    """What the fake Twilio does on answer: connect a callee to the TwiML's stream."""

    async def connect(call: FakeCall) -> None:
        stream = ET.fromstring(call.get("Twiml") or "").find("./Connect/Stream")
        assert stream is not None
        key = stream.find("Parameter").get("value")  # type: ignore[union-attr]
        await PhoneCallee(clips, behaviour).run(stream.get("url"), key)  # type: ignore[arg-type]

    return connect


async def test_an_answered_call_talks_and_is_hung_up_through_rest(
    caller: TelephonyCaller, fake: FakeTwilio
) -> None:
    p = persona("p01_salary_owner")
    clips = persona_clips(p.to_case().answers, AUDIO / p.id)
    fake.on_answer = phone_answered_by(clips, Behaviour(hang_up_on="card_purpose"))
    account = p.account.model_copy(update={"phone": ANSWERS})
    voice = await caller.call(account)
    r = voice.result
    assert r.record.outcome is Outcome.HUNG_UP and r.record.identity_confirmed
    created = fake.api_requests()
    assert len(created) == 1 and created[0].get("To") == ANSWERS
    hangups = fake.api_requests(f"/Calls/{next(iter(fake.calls))}.json")
    assert hangups and hangups[0].get("Status") == "completed"
    assert len(caller.board) == 0 and len(caller.server.book) == 0


@pytest.mark.parametrize(
    ("number", "outcome"), [(BUSY, Outcome.BUSY), (MACHINE, Outcome.VOICEMAIL)]
)
async def test_unanswered_or_machine_calls_say_nothing(
    caller: TelephonyCaller, fake: FakeTwilio, number: str, outcome: Outcome
) -> None:
    connected: list[str] = []

    async def record(call: FakeCall) -> None:
        connected.append(call.sid)

    fake.on_answer = record
    p = persona("p01_salary_owner")
    voice = await caller.call(p.account.model_copy(update={"phone": number}))
    assert voice.result.record.outcome is outcome
    assert not [t for t in voice.result.record.turns if t.role == "bot"]  # nothing said
    await asyncio.sleep(0.2)
    assert caller.server.live_sessions == 0
