"""Provider-neutral types: status spellings, AMD verdicts, outcomes, the status board."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.core.vocab import Outcome
from bot.telephony.dialer import (
    AnsweredBy,
    CallStatus,
    CallStatusBoard,
    DialStatusEvent,
    outcome_for,
)

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def ev(
    key: str,
    status: CallStatus,
    answered_by: AnsweredBy | None = None,
    duration: float | None = None,
) -> DialStatusEvent:
    return DialStatusEvent("CA" + "a" * 32, key, status, answered_by, duration, T0)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("queued", CallStatus.QUEUED),
        ("initiated", CallStatus.QUEUED),
        ("ringing", CallStatus.RINGING),
        ("in-progress", CallStatus.IN_PROGRESS),
        ("In-Progress", CallStatus.IN_PROGRESS),
        ("no-answer", CallStatus.NO_ANSWER),
        ("busy", CallStatus.BUSY),
        ("failed", CallStatus.FAILED),
        ("canceled", CallStatus.CANCELED),
        ("completed", CallStatus.COMPLETED),
    ],
)
def test_call_status_parses_twilio_spellings(raw: str, status: CallStatus) -> None:
    assert CallStatus.parse(raw) is status


def test_call_status_rejects_unknown_words_and_knows_finals() -> None:
    with pytest.raises(ValueError):
        CallStatus.parse("exploded")
    finals = {s for s in CallStatus if s.is_final}
    assert finals == {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.FAILED,
        CallStatus.CANCELED,
    }


@pytest.mark.parametrize(
    ("raw", "answered_by"),
    [
        ("human", AnsweredBy.HUMAN),
        ("machine_start", AnsweredBy.MACHINE),
        ("machine_end_beep", AnsweredBy.MACHINE),
        ("machine_end_silence", AnsweredBy.MACHINE),
        ("machine_end_other", AnsweredBy.MACHINE),
        ("fax", AnsweredBy.FAX),
        ("unknown", AnsweredBy.UNKNOWN),
        ("something_new", AnsweredBy.UNKNOWN),
        ("", None),
        (None, None),
    ],
)
def test_answered_by_collapses_machine_verdicts(
    raw: str | None, answered_by: AnsweredBy | None
) -> None:
    assert AnsweredBy.parse(raw) is answered_by


@pytest.mark.parametrize(
    ("status", "answered_by", "outcome"),
    [
        (CallStatus.NO_ANSWER, None, Outcome.NO_ANSWER),
        (CallStatus.CANCELED, None, Outcome.NO_ANSWER),
        (CallStatus.BUSY, None, Outcome.BUSY),
        (CallStatus.FAILED, None, Outcome.FAILED),
        (CallStatus.COMPLETED, AnsweredBy.MACHINE, Outcome.VOICEMAIL),
        (CallStatus.IN_PROGRESS, AnsweredBy.MACHINE, Outcome.VOICEMAIL),
        (CallStatus.COMPLETED, AnsweredBy.FAX, Outcome.FAILED),
        (CallStatus.COMPLETED, AnsweredBy.HUMAN, None),
        (CallStatus.COMPLETED, AnsweredBy.UNKNOWN, None),
        (CallStatus.COMPLETED, None, None),
        (CallStatus.IN_PROGRESS, AnsweredBy.HUMAN, None),
        (CallStatus.RINGING, None, None),
        (CallStatus.QUEUED, None, None),
    ],
)
def test_outcome_for(
    status: CallStatus, answered_by: AnsweredBy | None, outcome: Outcome | None
) -> None:
    assert outcome_for(ev("k", status, answered_by)) == outcome


# -- the board --------------------------------------------------------------------------


async def test_board_wait_returns_on_answer_then_final_keeps_amd_verdict() -> None:
    board = CallStatusBoard()
    final = board.expect("k1")
    waiter = asyncio.create_task(board.wait_answered_or_final("k1", timeout=2))
    assert board.publish(ev("k1", CallStatus.RINGING))
    await asyncio.sleep(0)
    assert not waiter.done()
    board.publish(ev("k1", CallStatus.IN_PROGRESS))
    answered = await waiter
    assert answered.status is CallStatus.IN_PROGRESS and answered.answered_by is None
    board.publish(ev("k1", CallStatus.IN_PROGRESS, AnsweredBy.MACHINE))  # async AMD verdict
    assert len(board) == 1
    board.publish(ev("k1", CallStatus.COMPLETED, duration=12.0))
    done = await final
    assert done.status is CallStatus.COMPLETED
    assert done.answered_by is AnsweredBy.MACHINE  # merged into the final event
    assert outcome_for(done) is Outcome.VOICEMAIL
    assert len(board) == 0
    assert (await board.final("k1")) == done  # late callers still get it


async def test_board_wait_returns_final_when_never_answered() -> None:
    board = CallStatusBoard()
    board.expect("k2")
    board.publish(ev("k2", CallStatus.RINGING))
    board.publish(ev("k2", CallStatus.NO_ANSWER))
    event = await board.wait_answered_or_final("k2", timeout=1)
    assert event.status is CallStatus.NO_ANSWER
    assert outcome_for(event) is Outcome.NO_ANSWER
    assert len(board) == 0


async def test_board_wait_times_out_and_attempt_stays_pending() -> None:
    board = CallStatusBoard()
    board.expect("k3")
    board.publish(ev("k3", CallStatus.RINGING))
    with pytest.raises(TimeoutError):
        await board.wait_answered_or_final("k3", timeout=0.02)
    # the timeout did not cancel the shared future: a later answer still gets through
    board.publish(ev("k3", CallStatus.IN_PROGRESS))
    assert (await board.wait_answered_or_final("k3", timeout=1)).status is CallStatus.IN_PROGRESS


async def test_board_drops_events_for_unexpected_keys_and_unknown_waits_fail() -> None:
    board = CallStatusBoard()
    assert not board.publish(ev("nobody", CallStatus.COMPLETED))
    assert len(board) == 0 and board.latest("nobody") is None
    with pytest.raises(KeyError):
        await board.wait_answered_or_final("nobody", timeout=0.01)
    with pytest.raises(KeyError):
        await board.final("nobody", timeout=0.01)


async def test_board_ignores_callbacks_after_the_final_one() -> None:
    board = CallStatusBoard()
    final = board.expect("k4")
    board.publish(ev("k4", CallStatus.BUSY))
    assert not board.publish(ev("k4", CallStatus.RINGING))  # late, out of order
    assert (await final).status is CallStatus.BUSY
    assert board.latest("k4") is not None and board.latest("k4").status is CallStatus.BUSY  # type: ignore[union-attr]


async def test_board_forget_cancels_waiters() -> None:
    board = CallStatusBoard()
    final = board.expect("k5")
    waiter = asyncio.create_task(board.wait_answered_or_final("k5", timeout=2))
    await asyncio.sleep(0)
    board.forget("k5")
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert final.cancelled() and len(board) == 0
    assert not board.publish(ev("k5", CallStatus.COMPLETED))


async def test_board_memory_stays_flat_over_thousands_of_calls() -> None:
    board = CallStatusBoard(keep_finished=100)
    finals = [CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED]
    for i in range(5000):
        key = f"attempt-{i}"
        board.expect(key)
        board.publish(ev(key, CallStatus.RINGING))
        board.publish(ev(key, CallStatus.IN_PROGRESS, AnsweredBy.HUMAN))
        board.publish(ev(key, finals[i % 4]))
    for i in range(200):  # dial refused: never a callback
        board.expect(f"refused-{i}")
        board.forget(f"refused-{i}")
    assert len(board) == 0
    assert len(board._attempts) == 0
    assert len(board._finished) == 100
    assert board.latest("attempt-4999") is not None
    assert board.latest("attempt-0") is None  # evicted
