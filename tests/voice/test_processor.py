"""The dialogue inside a pipecat pipeline: frames in, prompts and marks out (no audio,
no models: pipecat's own test runner and the keyword-table analyzer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    EndWorkerFrame,
    Frame,
    InputDTMFFrame,
    OutputTransportMessageFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from bot.core.dialogue import DialogueManager
from bot.core.scripts import TemplateLibrary
from bot.core.vocab import Intent, Outcome
from bot.voice.asr import DecodeHint
from bot.voice.gateways import StreamStart, mark_message
from bot.voice.processor import IDENTITY_HYPOTHESES, DialogueProcessor
from bot.voice.stt import DecodeHintFrame, SegmentTranscribed
from bot.voice.timeline import CallTimeline
from bot.voice.tts.service import PacedSpeakFrame
from tests.conftest import STANDARD_TABLE, TableAnalyzer, make_account

pytestmark = pytest.mark.anyio

START = StreamStart("MZ1", "CA1", {"call_key": "k"})


class Segments:
    """Stands in for the STT's count of segments handed to transcription."""

    def __init__(self) -> None:
        self.queued = 0


def make(
    library: TemplateLibrary, analyzer: TableAnalyzer, segments: Segments, **kw: Any
) -> DialogueProcessor:
    dm = DialogueManager(
        library.scripts["suspicious_txn_full"],
        make_account(),
        analyzer,
        library.language("zh"),
        bank_name="示例银行",
    )
    return DialogueProcessor(
        dm,
        CallTimeline(),
        mark=lambda topic: mark_message("twilio", START, topic),
        vad_stop_secs=0.25,
        segments_queued=lambda: segments.queued,
        **kw,
    )


def make_counting(
    library: TemplateLibrary, analyzer: TableAnalyzer, segments: Segments, **kw: Any
) -> DialogueProcessor:
    """A processor whose count of queued segments follows the VAD stops it has seen, as
    the STT's does (``make``'s is set once, when the frames to send are built)."""
    seen = Segments()
    proc = make(library, analyzer, seen, **kw)
    process = proc.process_frame

    async def counting(frame: Frame, direction: Any) -> None:
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            seen.queued += 1
        await process(frame, direction)

    proc.process_frame = counting  # type: ignore[method-assign]
    return proc


def said(frames: Sequence[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TTSSpeakFrame)]


def marks(frames: Sequence[Frame]) -> list[dict[str, Any]]:
    return [f.message for f in frames if isinstance(f, OutputTransportMessageFrame)]


def answer(segments: Segments, *texts: str, stop_first: bool = False) -> list[Frame]:
    """One callee turn of one or more VAD segments, as the STT and turn tracker emit it."""
    frames: list[Frame] = [UserStartedSpeakingFrame()]
    seq = segments.queued
    for text in texts:
        seq += 1
        frames += [VADUserStoppedSpeakingFrame(), TranscriptionFrame(text, "", "")]
        frames.append(SegmentTranscribed(seq, text))
    segments.queued = seq
    if stop_first:  # the system frame overtakes the last transcript
        frames.insert(len(frames) - 2, UserStoppedSpeakingFrame())
    else:
        frames.append(UserStoppedSpeakingFrame())
    return frames


async def test_the_greeting_is_spoken_then_marked_with_its_topic(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    proc = make(library, analyzer, Segments())
    down, _ = await run_test(proc, frames_to_send=[])
    assert said(down) and "李娜" in said(down)[0]
    kinds = [type(f) for f in down if isinstance(f, (TTSSpeakFrame, OutputTransportMessageFrame))]
    assert kinds == [PacedSpeakFrame, OutputTransportMessageFrame]  # the mark follows the prompt
    mark = marks(down)[0]
    assert mark == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "identity"}}
    first = next(f for f in down if isinstance(f, OutputTransportMessageFrame))
    assert first.interruptible is False  # survives a barge-in flush


async def test_an_answer_moves_the_dialogue_and_is_not_passed_to_the_tts(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make(library, analyzer, segments)
    down, _ = await run_test(proc, frames_to_send=answer(segments, "是我"))
    assert len(said(down)) == 2
    assert not any(isinstance(f, TranscriptionFrame) for f in down)
    assert proc.dialogue.record.identity_confirmed
    assert marks(down)[1]["mark"]["name"] != "identity"


async def test_a_turn_closed_before_its_last_transcript_waits_for_it(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make(library, analyzer, segments)
    frames = answer(segments, "是", "我", stop_first=True)
    down, _ = await run_test(proc, frames_to_send=frames)
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert [t.text for t in callee] == ["是我"]  # one answer, both segments
    assert len(said(down)) == 2


async def test_segments_of_one_turn_are_one_answer(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make(library, analyzer, segments)
    await run_test(proc, frames_to_send=answer(segments, "是我", "李娜"))
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert [t.text for t in callee] == ["是我李娜"]


async def test_a_turn_with_nothing_transcribed_at_the_identity_question_is_asked_again(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make(library, analyzer, segments)
    segments.queued = 1
    frames = [
        UserStartedSpeakingFrame(),
        VADUserStoppedSpeakingFrame(),
        UserStoppedSpeakingFrame(),
        SegmentTranscribed(1, ""),  # Whisper made nothing of it: "喂？" lost in the line
    ]
    analyzer.default = Intent.UNCLEAR
    down, _ = await run_test(proc, frames_to_send=frames)
    assert len(said(down)) == 2 and said(down)[1] == said(down)[0]
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert [t.decision for t in callee] == ["speech not understood: re-ask"]


async def test_a_turn_with_nothing_transcribed_after_identity_is_not_an_answer(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make(library, analyzer, segments)
    frames = answer(segments, "是我")
    segments.queued += 1
    frames += [
        SleepFrame(0.1),
        UserStartedSpeakingFrame(),
        VADUserStoppedSpeakingFrame(),
        UserStoppedSpeakingFrame(),
        SegmentTranscribed(segments.queued, ""),  # noise
    ]
    down, _ = await run_test(proc, frames_to_send=frames)
    assert len(said(down)) == 2
    assert len([t for t in proc.dialogue.record.turns if t.role == "callee"]) == 1


async def test_the_identity_question_sends_the_name_hint_upstream_and_clears_it(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make(library, analyzer, segments)
    _, up = await run_test(proc, frames_to_send=answer(segments, "是我"))
    hints = [f.hint for f in up if isinstance(f, DecodeHintFrame)]
    assert hints == [DecodeHint("李娜", IDENTITY_HYPOTHESES), None]


async def test_alternatives_reach_the_dialogue(library: TemplateLibrary) -> None:
    segments = Segments()
    analyzer = TableAnalyzer({})  # 丽娜 is no entity: only the alternative names 李娜
    proc = make(library, analyzer, segments)
    frames = answer(segments, "我是丽娜")
    frames[-2] = SegmentTranscribed(segments.queued, "我是丽娜", ("我是李娜",))
    await run_test(proc, frames_to_send=frames)
    assert proc.dialogue.record.identity_confirmed


async def test_a_question_back_at_the_identity_question_waits_for_the_rest(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    # "谁？" then a pause, then "李娜？不认识，你打错了": one answer, read whole
    segments = Segments()
    proc = make_counting(library, analyzer, segments, identity_hold_s=0.5)
    frames = [
        *answer(segments, "谁？"),
        SleepFrame(0.1),
        *answer(segments, "李娜？不认识，你打错了。"),
    ]
    down, _ = await run_test(proc, frames_to_send=frames)
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert [t.text for t in callee] == ["谁？李娜？不认识，你打错了。"]
    assert proc.dialogue.record.outcome is Outcome.WRONG_PERSON
    assert len(said(down)) == 2  # the greeting, then the closing: nothing asked in between


async def test_a_yes_heard_with_a_question_back_waits_for_the_rest(
    library: TemplateLibrary,
) -> None:
    # a wife's "喂？段永福啊？" heard "喂对有说啊", then "我是他老婆，他不在"
    analyzer = TableAnalyzer(
        {**STANDARD_TABLE, "对": Intent.AFFIRM},
        acts={"对": "acts=confirm", "说啊": "acts=ask_who", "我是他老婆": "acts=third_party"},
    )
    proc = make_counting(library, analyzer, Segments(), identity_hold_s=0.5, early_answer=True)
    frames = [*_open_turn("喂对有说啊"), UserStoppedSpeakingFrame(), SleepFrame(0.1)]
    frames += [*_open_turn("我是他老婆，他不在。", first=2), UserStoppedSpeakingFrame()]
    await run_test(proc, frames_to_send=frames)
    assert not proc.dialogue.record.identity_confirmed
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert [t.text for t in callee] == ["喂对有说啊我是他老婆，他不在。"]
    assert proc.dialogue.record.outcome is Outcome.WRONG_PERSON


async def test_a_held_answer_with_nothing_after_it_is_answered_when_the_hold_ends(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make_counting(library, analyzer, segments, identity_hold_s=0.2)
    frames = [*answer(segments, "谁？"), SleepFrame(0.5)]
    down, _ = await run_test(proc, frames_to_send=frames)
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert [t.text for t in callee] == ["谁？"]
    assert len(said(down)) == 2 and not proc.dialogue.record.identity_confirmed
    assert marks(down)[-1]["mark"]["name"] == "identity"  # asked again


def _open_turn(*texts: str, first: int = 1) -> list[Frame]:
    """A callee turn whose segments (numbered from ``first``) are transcribed while it is
    still open (no close)."""
    frames: list[Frame] = [UserStartedSpeakingFrame()]
    for seq, text in enumerate(texts, first):
        frames += [VADUserStoppedSpeakingFrame(), TranscriptionFrame(text, "", "")]
        frames += [SegmentTranscribed(seq, text), SleepFrame(0.05)]  # the VAD frame overtakes
    return frames


@pytest.mark.parametrize("early", [True, False])
async def test_a_plain_yes_is_answered_before_the_turn_closes(
    library: TemplateLibrary, analyzer: TableAnalyzer, early: bool
) -> None:
    proc = make_counting(
        library, TableAnalyzer({"是我": Intent.AFFIRM}), Segments(), early_answer=early
    )
    down, _ = await run_test(proc, frames_to_send=_open_turn("是我"))
    assert proc.dialogue.record.identity_confirmed is early  # without it: the close waits
    assert len(said(down)) == (2 if early else 1)


async def test_after_an_early_yes_the_close_is_no_second_answer_and_more_words_are_the_next(
    library: TemplateLibrary,
) -> None:
    analyzer = TableAnalyzer({"是我": Intent.AFFIRM})
    proc = make_counting(library, analyzer, Segments(), early_answer=True)
    frames = [*_open_turn("是我"), SleepFrame(0.05), UserStoppedSpeakingFrame()]
    await run_test(proc, frames_to_send=frames)
    assert [t.text for t in proc.dialogue.record.turns if t.role == "callee"] == ["是我"]

    proc = make_counting(library, analyzer, Segments(), early_answer=True)
    frames = [*_open_turn("是我", "工资卡"), UserStoppedSpeakingFrame()]
    await run_test(proc, frames_to_send=frames)
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert [t.text for t in callee] == ["是我", "工资卡"]
    assert callee[1].topic != "identity"


async def test_a_longer_answer_or_no_yes_waits_for_the_close(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    table = TableAnalyzer({"是我": Intent.AFFIRM})
    for text in ("是我，不过你们是哪个银行的呀", "谁？"):
        proc = make_counting(library, table, Segments(), early_answer=True)
        await run_test(proc, frames_to_send=_open_turn(text))
        assert not [t for t in proc.dialogue.record.turns if t.role == "callee"], text


async def test_a_carrier_announcement_ends_the_call_with_nothing_said(
    library: TemplateLibrary,
) -> None:
    segments = Segments()
    analyzer = TableAnalyzer({"您拨打的": Intent.VOICEMAIL})
    proc = make(library, analyzer, segments)
    down, _ = await run_test(proc, frames_to_send=answer(segments, "您拨打的电话已关机。"))
    assert len(said(down)) == 1  # the greeting only
    assert any(isinstance(f, EndWorkerFrame) for f in down)
    assert proc.dialogue.record.outcome is Outcome.VOICEMAIL


async def test_dtmf_reaches_the_dialogue(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    proc = make(library, analyzer, Segments())
    await run_test(proc, frames_to_send=[InputDTMFFrame(KeypadEntry.ONE)])
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert callee and callee[0].event == "dtmf" and callee[0].text == "1"
    assert callee[0].nlu is not None and callee[0].nlu.intent.source == "dtmf"


async def test_the_closing_prompt_ends_the_worker_after_it_is_spoken(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make(library, analyzer, segments)
    down, _ = await run_test(proc, frames_to_send=answer(segments, "你打错了"))
    assert proc.dialogue.done and proc.dialogue.record.outcome is Outcome.WRONG_PERSON
    tail = [type(f) for f in down][-3:]
    assert tail == [PacedSpeakFrame, OutputTransportMessageFrame, EndWorkerFrame]


async def test_talking_over_a_prompt_is_flagged_as_barge_in(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    segments = Segments()
    proc = make(library, analyzer, segments)
    proc.timeline.audio_on_wire(30.0)  # the greeting is still playing at the far end
    down, _ = await run_test(proc, frames_to_send=answer(segments, "不知道"))
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert callee[0].decision == "barge-in without an answer: re-ask"
    assert said(down)[1] == said(down)[0]


async def test_quiet_after_the_prompt_counts_as_no_input(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    proc = make(library, analyzer, Segments(), no_input_s=0.2)
    down, _ = await run_test(proc, frames_to_send=[SleepFrame(0.6)])
    callee = [t for t in proc.dialogue.record.turns if t.role == "callee"]
    assert callee and callee[0].event == "silence"
    assert len(said(down)) >= 2  # the re-prompt


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "plivo"])
def test_every_gateway_has_a_mark(provider: str) -> None:
    message = mark_message(provider, START, "fund_source")  # type: ignore[arg-type]
    assert message is not None and "fund_source" in str(message)
