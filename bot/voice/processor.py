"""The dialogue manager inside a pipecat pipeline.

Sits after speech recognition and turn tracking, before text-to-speech::

    transport.input -> VAD -> STT -> UserTurnProcessor -> DialogueProcessor -> TTS -> transport.output

It turns what the callee did into :class:`~bot.core.dialogue.CalleeEvent` s and what the
dialogue answers into frames: the prompt text (for the TTS), then the gateway's *mark*
message naming the prompt's topic (the loopback callee, like the persona contract,
answers by it), and after a closing prompt an ``EndWorkerFrame`` so the call hangs up
once the closing has played. Transcripts are swallowed here: the TTS must not speak them.

Two pipecat details shape it (see ``docs/research/pipecat-wiring.md``):

* ``UserStoppedSpeakingFrame`` is a system frame and overtakes the transcript, so a
  turn is answered once it is closed *and* its transcript is in, whichever comes last.
* Barge-in flushes every interruptible frame queued behind the prompt audio; the mark
  is made uninterruptible so the callee still learns the topic it talked over.

At the identity question it sends the STT a decode hint upstream (the holder's name,
several hypotheses: ``docs/voice.md``, "Identity on a phone line"), passes the
hypotheses on to the dialogue, and passes a turn that was heard but not transcribed as
an empty answer, so a first answer lost in the line is asked again, not waited out.
There an answer that may be only its start (a question back, "谁？"; a two-character
fragment with no yes; a short yes heard with a question back:
:meth:`~bot.core.dialogue.DialogueManager.answer_may_continue`) is held ``identity_hold_s`` for the rest: speech that starts meanwhile joins the same
answer, so a stranger's "谁？……买买提江？不认识" is read whole, not in pieces. The other
way round, with ``early_answer`` a plain yes there ("是的", "对，是我":
:meth:`~bot.core.dialogue.DialogueManager.answer_complete`) is answered as soon as it is
transcribed, without waiting out the turn's end-of-speech timeout; the turn's close
that follows is then no second answer, and anything said after the yes is the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    EndWorkerFrame,
    Frame,
    InputDTMFFrame,
    OutputTransportMessageFrame,
    StartFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from bot.core.dialogue import BotUtterance, CalleeEvent, DialogueManager
from bot.voice.asr import DecodeHint
from bot.voice.stt import DecodeHintFrame, SegmentTranscribed
from bot.voice.timeline import CallTimeline
from bot.voice.tts.service import PacedSpeakFrame

#: Builds the gateway's mark message for a topic (None: the gateway has none).
MarkFactory = Callable[[str], dict[str, Any] | None]
#: Live view of the call: (role "bot"|"callee", topic, text, seconds since the start).
TurnListener = Callable[[str, str, str, float], None]
#: Hypotheses asked for on a hinted (identity) turn.
IDENTITY_HYPOTHESES = 3
#: Holds of one answer at most (each ``identity_hold_s``) before it is answered as it is.
MAX_HOLDS = 2


class DialogueProcessor(FrameProcessor):
    def __init__(
        self,
        dialogue: DialogueManager,
        timeline: CallTimeline,
        *,
        mark: MarkFactory,
        vad_stop_secs: float,
        segments_queued: Callable[[], int],
        no_input_s: float = 6.0,
        identity_hold_s: float = 0.0,
        early_answer: bool = False,
        on_turn: TurnListener | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dialogue = dialogue
        self.timeline = timeline
        self._mark = mark
        self._vad_stop_secs = vad_stop_secs
        self._no_input_s = no_input_s
        self._hold_s = identity_hold_s
        #: An answer held for its rest (see the module docstring), and how often it was.
        self._hold: asyncio.Task[None] | None = None
        self._holds = 0
        self._early_answer = early_answer
        #: The open turn was answered before it closed (a plain yes).
        self._answered_early = False
        self._segments_queued = segments_queued
        self._on_turn = on_turn
        self._segments_done = 0
        #: Segments that must be transcribed before the closed turn is answered.
        self._awaiting: int | None = None
        self._texts: list[str] = []
        #: Per transcribed segment of the open turn: its text and its other hypotheses.
        self._segments: list[tuple[str, tuple[str, ...]]] = []
        self._hint: DecodeHint | None = None
        self._turn_open = False
        self._interrupted = False
        #: Last time (call seconds) the callee spoke, pressed a key or was answered.
        self._last_activity = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        #: Utterances said, in order (the live view and tests read them).
        self.said: list[BotUtterance] = []

    # -- what the dialogue says ------------------------------------------------------

    async def _say(self, utterance: BotUtterance | None) -> None:
        if utterance is None:
            return
        self.said.append(utterance)
        self._tell("bot", utterance.topic, utterance.text)
        await self._send_hint()
        await self.push_frame(PacedSpeakFrame(utterance.text, slow=utterance.slow))
        message = self._mark(utterance.topic)
        if message is not None:
            mark = OutputTransportMessageFrame(message=message)
            mark.interruptible = False  # must survive a barge-in flush
            await self.push_frame(mark)
        if utterance.final:
            await self.push_frame(EndWorkerFrame(reason="dialogue finished"))

    async def _send_hint(self) -> None:
        name = self.dialogue.expected_name
        hint = DecodeHint(name, IDENTITY_HYPOTHESES) if name else None
        if hint != self._hint:
            self._hint = hint
            await self.push_frame(DecodeHintFrame(hint), FrameDirection.UPSTREAM)

    async def _handle(self, event: CalleeEvent) -> None:
        if self.dialogue.done:
            return
        timing = self.timeline.replied()
        self._last_activity = self.timeline.now()
        self._tell("callee", self.dialogue.current_topic, event.text or f"<{event.kind.value}>")
        utterance = self.dialogue.handle(event)
        if timing is not None and utterance is not None:
            timing.turn_index = len(self.dialogue.record.turns) - 1
        await self._say(utterance)
        if utterance is None and self.dialogue.done:  # ended without a word (an announcement)
            await self.push_frame(EndWorkerFrame(reason="dialogue finished without a word"))

    def _tell(self, role: str, topic: str, text: str) -> None:
        if self._on_turn is not None:
            self._on_turn(role, topic, text, self.timeline.now())

    async def _answer(self) -> None:
        self._awaiting = None
        text = "".join(self._texts).strip()
        if self._hold_s > 0 and self._holds < MAX_HOLDS and self.dialogue.answer_may_continue(text):
            self._holds += 1
            self._hold = self.create_task(self._answer_after_hold(), "identity-hold")
            return
        await self._deliver()

    def _complete_before_close(self) -> bool:
        """The open turn's words so far are a complete answer (every segment cut so far
        is transcribed, and the dialogue calls it complete)."""
        return (
            self._early_answer
            and self._turn_open
            and not self._answered_early
            and self._segments_done >= self._segments_queued()
            and self.dialogue.answer_complete("".join(self._texts))
        )

    async def _answer_after_hold(self) -> None:
        await asyncio.sleep(self._hold_s)
        self._hold = None
        if not self._turn_open and self._awaiting is None:
            await self._deliver()

    async def _cancel_hold(self) -> None:
        """Stop waiting out a held answer: the callee speaks again (the rest joins the
        held words), or the call ends (nothing more is answered)."""
        if self._hold is not None:
            await self.cancel_task(self._hold)
            self._hold = None

    async def _deliver(self) -> None:
        self._holds = 0
        text = "".join(self._texts).strip()
        segments, self._segments = self._segments, []
        self._texts.clear()
        interrupted, self._interrupted = self._interrupted, False
        # Speech the recogniser made nothing of is an (empty) answer at the identity
        # question only: there a caller who said "喂？" must be asked again.
        if text or (segments and self.dialogue.expected_name):
            await self._handle(
                CalleeEvent.speech(
                    text,
                    self.timeline.now(),
                    interrupted=interrupted,
                    alternatives=_turn_alternatives(segments),
                )
            )

    # -- events from outside the frame flow --------------------------------------------

    def _waiting_for_callee(self) -> bool:
        return not (
            self.dialogue.done
            or self._turn_open
            or self._awaiting is not None
            or self._segments_done < self._segments_queued()
            or self.timeline.bot_audible()
        )

    async def _no_input_watchdog(self) -> None:
        """Counts as no input ``no_input_s`` of quiet after the prompt finished playing."""
        while not self.dialogue.done:
            await asyncio.sleep(0.1)
            quiet_since = max(self.timeline.playout_end, self._last_activity)
            if self._waiting_for_callee() and self.timeline.now() - quiet_since >= self._no_input_s:
                await self._handle(CalleeEvent.silence(self.timeline.now()))

    def on_hangup(self) -> None:
        """The far end closed the line (the socket dropped or the gateway said stop)."""
        if not self.dialogue.done:
            self.dialogue.handle(CalleeEvent.hangup(self.timeline.now()))

    # -- frames ------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            self._texts.append(frame.text)  # not passed on: the TTS would speak it
            return
        if isinstance(frame, SegmentTranscribed):
            self._segments_done = frame.seq
            self._segments.append((frame.text, frame.alternatives))
            if self._awaiting is not None and self._segments_done >= self._awaiting:
                await self._answer()
            elif self._complete_before_close():
                self._answered_early = True
                await self._deliver()
            return
        if isinstance(frame, InputDTMFFrame):
            self.timeline.speech_ended()
            await self._handle(CalleeEvent.dtmf(frame.button.value, self.timeline.now()))
            return
        if isinstance(frame, (EndFrame, CancelFrame)):
            await self._cancel_hold()  # nothing more is answered
            if self._watchdog is not None:
                await self.cancel_task(self._watchdog)
                self._watchdog = None
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self._say(self.dialogue.start())
            self._watchdog = self.create_task(self._no_input_watchdog(), "no-input")
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._last_activity = self.timeline.now()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._last_activity = self.timeline.now()
            self.timeline.speech_ended(self._vad_stop_secs)
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._turn_open = True
            await self._cancel_hold()
            if self.timeline.bot_audible():
                self._interrupted = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            # A system frame: it can overtake the turn's last transcript. Answer once
            # every segment the VAD cut in this turn has been transcribed.
            self._turn_open = False
            self._last_activity = self.timeline.now()
            self._awaiting = self._segments_queued()
            if self._answered_early and not self._texts and self._awaiting <= self._segments_done:
                self._awaiting = None  # answered already, and nothing was said since
            elif self._segments_done >= self._awaiting:
                await self._answer()
            self._answered_early = False


def _turn_alternatives(segments: list[tuple[str, tuple[str, ...]]]) -> tuple[str, ...]:
    """The turn's text with one segment at a time read as one of its alternatives."""
    texts = [text for text, _ in segments]
    out: list[str] = []
    for i, (_, alternatives) in enumerate(segments):
        for alt in alternatives:
            out.append("".join([*texts[:i], alt, *texts[i + 1 :]]).strip())
    return tuple(dict.fromkeys(out))
