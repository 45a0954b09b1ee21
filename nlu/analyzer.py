"""The NLU facade: normalise an utterance, classify its intent, extract its entities,
read what it means under the answer schema, and settle the dialogue intent from both."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from nlu.entities import EntityExtractor
from nlu.intent.classifier import IntentClassifier
from nlu.normalize import normalize
from nlu.reading.reader import Reader, purpose_entities, resolve_intent
from nlu.types import NluContext, NluResult


class Analyzer:
    """Build once per process (loads the spaCy pipeline and the intent model) and share.

    Results are memoised on (text, topic, known names): the same short answers ("好的",
    "是我", "不知道") recur constantly across calls, and the analysis is pure.
    """

    def __init__(
        self,
        intent_model_dir: Path | None,
        *,
        extractor: EntityExtractor | None = None,
        cache_size: int = 4096,
        reading_model_dir: Path | None = None,
    ) -> None:
        self.extractor = extractor or EntityExtractor()
        self.classifier = IntentClassifier(intent_model_dir, cache_size=cache_size)
        #: ``reading_model_dir=None``: no reading model (every reading is empty, the
        #: dialogue runs on intents alone, as in the rules-only unit tests).
        self.reader = Reader.load(reading_model_dir) if reading_model_dir else None
        self._cache: OrderedDict[tuple[str, NluContext], NluResult] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def analyze(self, text: str, context: NluContext) -> NluResult:
        # One analysis at a time: the caches are plain dicts, and the work is CPU-bound
        # under the GIL anyway (calls in threads of one worker share this object).
        with self._lock:
            return self._analyze(text, context)

    def _analyze(self, text: str, context: NluContext) -> NluResult:
        key = (text, context)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        clean = normalize(text)
        intent = self.classifier.classify(clean, context.topic)
        entities = self.extractor.extract(clean, context)
        if self.reader is None:
            result = NluResult(text, clean, intent, entities)
        else:
            reading = self.reader.read(clean, context.topic, entities, context.known_names[:1])
            entities += purpose_entities(reading, clean, context.topic, entities)
            result = NluResult(
                text, clean, resolve_intent(intent, reading, context.topic), entities, reading
            )
        if self._cache_size:
            self._cache[key] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result
