"""A simulated callee for text mode: answers each bot question from a persona.

It follows the persona contract: the answer for the topic of the prompt just played,
``default`` for any other topic, silence where the answer is null or missing. It also
keeps a rough clock (speaking rates of both sides) so duration budgets behave as on a
real line.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.core.dialogue import BotUtterance, CalleeEvent
from bot.core.vocab import Topic

QUESTION_TOPICS = frozenset(t.value for t in Topic) - {Topic.DEFAULT.value}

#: Seconds per character: TTS prompt speed and a callee's speaking speed (Mandarin).
BOT_SECONDS_PER_CHAR = 0.22
CALLEE_SECONDS_PER_CHAR = 0.25
#: How long a silent callee is waited for before it counts as no input.
NO_INPUT_TIMEOUT = 6.0


class PersonaCallee:
    def __init__(self, answers: Mapping[str, str | None]):
        self.answers = answers
        self.clock = 0.0

    def answer_for(self, topic: str) -> str | None:
        """The persona's answer to a question under ``topic``: its own answer for a
        contract topic (None = silence), ``default`` for anything else."""
        if topic in QUESTION_TOPICS:
            return self.answers.get(topic)
        return self.answers.get("default")

    def __call__(self, utterance: BotUtterance) -> CalleeEvent:
        self.clock += len(utterance.text) * BOT_SECONDS_PER_CHAR
        text = self.answer_for(utterance.topic)
        if not text:
            self.clock += NO_INPUT_TIMEOUT
            return CalleeEvent.silence(self.clock)
        self.clock += 0.6 + len(text) * CALLEE_SECONDS_PER_CHAR
        return CalleeEvent.speech(text, self.clock)
