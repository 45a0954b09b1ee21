"""Dial through the fake Twilio; it calls our router (uvicorn on the test's loop) back with
signed callbacks; the board yields each scripted number's outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from bot.core.vocab import Outcome
from bot.telephony.dialer import (
    AnsweredBy,
    CallStatus,
    CallStatusBoard,
    DialRequest,
    DialStatusEvent,
    outcome_for,
)
from bot.telephony.twilio_rest import TwilioDialer
from bot.telephony.webhooks import twilio_router
from tests.telephony.conftest import STREAM_URL, free_socket, make_settings, serve, url_of
from tests.telephony.fake_twilio import FakeTwilio

pytestmark = pytest.mark.anyio


@dataclass
class Rig:
    fake: FakeTwilio
    board: CallStatusBoard
    dialer: TwilioDialer

    async def call(self, to: str, key: str) -> tuple[DialStatusEvent, DialStatusEvent]:
        """Dial as the orchestrator would; return the first answered-or-final event and
        the final one."""
        self.board.expect(key)
        await self.dialer.dial(DialRequest(to=to, call_key=key, stream_url=STREAM_URL))
        first = await self.board.wait_answered_or_final(key, timeout=5)
        return first, await self.board.final(key, timeout=5)


@pytest.fixture
async def rig(fake_twilio: FakeTwilio) -> AsyncIterator[Rig]:
    sock = free_socket()
    settings = make_settings(fake_twilio.base_url, url_of(sock))
    board = CallStatusBoard()
    app = FastAPI()
    app.include_router(twilio_router(settings, board))
    dialer = TwilioDialer(settings)
    async with serve(app, sock):
        yield Rig(fake_twilio, board, dialer)
        await dialer.aclose()


@pytest.mark.parametrize(
    ("to", "first_status", "final_status", "answered_by", "outcome"),
    [
        ("+8613800000001", CallStatus.IN_PROGRESS, CallStatus.COMPLETED, AnsweredBy.HUMAN, None),
        ("+8613800000002", CallStatus.NO_ANSWER, CallStatus.NO_ANSWER, None, Outcome.NO_ANSWER),
        ("+8613800000003", CallStatus.BUSY, CallStatus.BUSY, None, Outcome.BUSY),
        ("+8613800000004", CallStatus.FAILED, CallStatus.FAILED, None, Outcome.FAILED),
        (
            "+8613800000005",
            CallStatus.IN_PROGRESS,
            CallStatus.COMPLETED,
            AnsweredBy.MACHINE,
            Outcome.VOICEMAIL,
        ),
    ],
)
async def test_scripted_numbers_yield_their_outcomes(
    rig: Rig,
    to: str,
    first_status: CallStatus,
    final_status: CallStatus,
    answered_by: AnsweredBy | None,
    outcome: Outcome | None,
) -> None:
    first, final = await rig.call(to, f"key-{to[-2:]}")
    assert first.status is first_status
    assert final.status is final_status
    assert final.answered_by is answered_by
    assert outcome_for(final) == outcome
    assert final.call_id in rig.fake.calls
    rig.fake.wait_call_done(final.call_id)
    answers = [cb.answer for cb in rig.fake.callbacks]
    assert answers and set(answers) == {204}  # every signed callback was accepted
    assert len(rig.board) == 0


async def test_many_concurrent_calls_do_not_mix_up(rig: Rig) -> None:
    numbers = [f"+861380000000{i}" for i in (1, 2, 3, 4, 5)] * 4
    results = await asyncio.gather(*(rig.call(n, f"c{i}") for i, n in enumerate(numbers)))
    expected = {
        "1": None,
        "2": Outcome.NO_ANSWER,
        "3": Outcome.BUSY,
        "4": Outcome.FAILED,
        "5": Outcome.VOICEMAIL,
    }
    for number, (_, final) in zip(numbers, results, strict=True):
        assert outcome_for(final) == expected[number[-1]]
        assert rig.fake.calls[final.call_id].to == number
    assert len(rig.board) == 0


async def test_answered_call_is_hung_up_by_us(rig: Rig) -> None:
    rig.board.expect("up")
    await rig.dialer.dial(DialRequest("+8613800000006", "up", STREAM_URL))
    first = await rig.board.wait_answered_or_final("up", timeout=5)
    assert first.status is CallStatus.IN_PROGRESS
    with pytest.raises(TimeoutError):  # still talking: no final yet
        await rig.board.final("up", timeout=0.05)
    await rig.dialer.hangup(first.call_id)
    done = await rig.board.final("up", timeout=5)
    assert done.status is CallStatus.COMPLETED and done.call_id == first.call_id
    assert done.answered_by is AnsweredBy.HUMAN  # from the AMD callback, merged
    assert done.duration_s is not None and done.duration_s >= 0
    assert outcome_for(done) is None
    assert len(rig.board) == 0


async def test_ringing_call_we_give_up_on_is_canceled(rig: Rig) -> None:
    rig.fake.scripts["+8613800000007"] = [("status", "ringing")]  # rings forever
    final = rig.board.expect("ring")
    sid = await rig.dialer.dial(DialRequest("+8613800000007", "ring", STREAM_URL))
    with pytest.raises(TimeoutError):
        await rig.board.wait_answered_or_final("ring", timeout=0.3)
    await rig.dialer.hangup(sid)
    event = await asyncio.wait_for(final, 5)
    assert event.status is CallStatus.CANCELED
    assert outcome_for(event) is Outcome.NO_ANSWER
