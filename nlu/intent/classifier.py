"""Answer-intent classifier: high-precision rules first, the trained model otherwise.

Rules (:mod:`nlu.intent.rules`) fire on announcements, repeat requests, refusals,
busy/callback phrases, explicit custody statements and one-word answers; measured on the
held-out set they are right whenever they fire, so they take precedence. The model
(:mod:`nlu.intent.model`) handles the rest: substantive answers, paraphrases, noisy ASR.

Labels that cannot apply under a topic are masked out of the model's choice: custody
classes outside ``card_custody``; third-party, wrong-number and voicemail outside the
identity question (and ``default``, which covers the opening).

With ``model_dir=None`` the classifier runs on rules alone (fast unit tests, or a
deployment without torch): an utterance no rule claims is ``inform`` when it is long
enough to carry an answer to an open question, else ``unclear``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING

from bot.core.vocab import CUSTODY_INTENTS, Intent
from nlu.intent import rules
from nlu.types import IntentScore

if TYPE_CHECKING:
    from nlu.intent.model import IntentModel

#: Topics whose question is open, so an unrecognised answer is probably information.
OPEN_TOPICS = frozenset({"card_purpose", "fund_source", "counterparty", "occupation"})
#: Rules-only fallback: content characters needed to call an unmatched answer ``inform``.
INFORM_MIN_CHARS = 4
FALLBACK_CONFIDENCE = 0.4

_IDENTITY_ONLY = frozenset({Intent.THIRD_PARTY, Intent.WRONG_NUMBER})


RULE_ONLY = frozenset(
    {
        Intent.VOICEMAIL,
        Intent.BUSY_CALLBACK,
        Intent.ASK_REPEAT,
        Intent.WRONG_NUMBER,
        Intent.THIRD_PARTY,
    }
)


def excluded_intents(topic: str, *, rule_only: bool = True) -> frozenset[Intent]:
    """Labels the model may not return under ``topic``. ``rule_only=False`` keeps only
    the topic masks (to measure the model itself rather than the deployment policy)."""
    # Intents that end or redirect the call are formulaic ("请在提示音后留言", "我在开会，
    # 晚点打", "你说什么？", "打错了", "我是他老婆"): the rules catch them with full
    # precision, while the small
    # model, seeing a long or unusual answer, sometimes guesses them and would hang up
    # on a cooperative callee. Only rules may return them.
    excluded: set[Intent] = set(RULE_ONLY) if rule_only else set()
    if topic != rules.CUSTODY_TOPIC:
        excluded |= CUSTODY_INTENTS
    if topic not in rules.IDENTITY_TOPICS:
        # Once past the identity question a person is on the line: third-party,
        # wrong-number and answering-machine labels are settled at the identity gate
        # (rules still catch a formulaic announcement at any topic).
        excluded |= _IDENTITY_ONLY | {Intent.VOICEMAIL}
    return frozenset(excluded)


def fallback(text: str, topic: str) -> IntentScore:
    """What rules-only mode answers when no rule fires."""
    core = rules.core_text(text)
    if topic in OPEN_TOPICS and len(core) >= INFORM_MIN_CHARS:
        return IntentScore(Intent.INFORM, FALLBACK_CONFIDENCE, rules.SOURCE)
    return IntentScore(Intent.UNCLEAR, FALLBACK_CONFIDENCE, rules.SOURCE)


class IntentClassifier:
    """Classify a normalised callee utterance under the topic of the question asked.

    Thread-safe; results are memoised per ``(topic, text)`` in a small LRU cache because
    short answers (好的, 是我, 不知道) recur across calls.
    """

    def __init__(self, model_dir: Path | None, *, cache_size: int = 2048) -> None:
        self.model: IntentModel | None = None
        if model_dir is not None:
            from nlu.intent.model import IntentModel

            self.model = IntentModel.load(Path(model_dir))
        self._cache: OrderedDict[tuple[str, str], IntentScore] = OrderedDict()
        self._cache_size = cache_size
        self._lock = Lock()

    def _cached(self, key: tuple[str, str]) -> IntentScore | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _store(self, key: tuple[str, str], score: IntentScore) -> None:
        if not self._cache_size:
            return
        with self._lock:
            self._cache[key] = score
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def classify(self, text: str, topic: str) -> IntentScore:
        return self.classify_batch([(text, topic)])[0]

    def classify_batch(self, items: Sequence[tuple[str, str]]) -> list[IntentScore]:
        """Classify many ``(text, topic)`` pairs; the model sees one batch of the rest."""
        out: list[IntentScore | None] = []
        pending: list[int] = []
        for i, (text, topic) in enumerate(items):
            key = (topic, text)
            score = self._cached(key) or rules.match(text, topic)
            if score is None and not text.strip():
                score = IntentScore(Intent.UNCLEAR, 1.0, rules.SOURCE)
            if score is None and self.model is None:
                score = fallback(text, topic)
            if score is None:
                pending.append(i)
            else:
                self._store(key, score)
            out.append(score)
        if pending and self.model is not None:
            batch = [items[i] for i in pending]
            excludes = [excluded_intents(topic) for _, topic in batch]
            for i, score in zip(
                pending, self.model.predict_batch(batch, excludes=excludes), strict=True
            ):
                out[i] = score
                self._store((items[i][1], items[i][0]), score)
        return [s for s in out if s is not None]
