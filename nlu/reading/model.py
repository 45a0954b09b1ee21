"""The reading model: one logistic regression per schema value over the answer's
character n-gram features (:mod:`nlu.reading.features`), TF-IDF weighted.

Why this and not the small transformer: no pretrained Chinese encoder ships usable
weights offline, and a model trained from scratch on a few thousand answers learns
less than a linear model does from the same data; the linear model also explains
itself (the n-grams with the largest contribution are the words that carried a label)
and answers in well under a millisecond.

A model directory holds ``config.json`` (version, labels, thresholds), ``vocab.json``
(feature -> column) and ``weights.safetensors`` (``idf``, ``coef``, ``intercept``);
nothing is pickled, so a model file cannot run code when it is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer

from nlu.reading.features import analyze_document, document, surface
from nlu.reading.schema import FIELDS, Reading, Slot

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "model"
#: Words kept per slot as its explanation.
EVIDENCE_WORDS = 3


#: Features seen in fewer training answers are dropped (a third of the vocabulary, the
#: same cross-validated F1).
MIN_DF = 2


def make_vectorizer(vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    """The vectoriser, identical at training and at load time."""
    return TfidfVectorizer(
        analyzer=analyze_document,
        sublinear_tf=True,
        vocabulary=vocabulary,
        min_df=MIN_DF if vocabulary is None else 1,
        dtype=np.float32,
    )


@dataclass(frozen=True)
class LabelInfo:
    label: str
    threshold: float


def _single_valued() -> dict[str, bool]:
    return {name: not multi for name, (_, multi) in FIELDS.items()}


class ReadingModel:
    """Loaded once per process and shared; thread-safe (it holds no per-call state; the
    :class:`~nlu.analyzer.Analyzer` memoises whole results)."""

    def __init__(
        self,
        vectorizer: TfidfVectorizer,
        coef: NDArray[np.float32],
        intercept: NDArray[np.float32],
        labels: list[LabelInfo],
        version: str,
    ) -> None:
        self.vectorizer = vectorizer
        # Features x labels, so that a sparse row times it gives every label's logit.
        self._weights = np.ascontiguousarray(coef.T, dtype=np.float32)
        self._intercept = intercept.astype(np.float32)
        self.labels = labels
        self.version = version
        self._features = np.array(
            sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__), dtype=object
        )
        self._single = _single_valued()

    # -- persistence --------------------------------------------------------------

    @classmethod
    def load(cls, model_dir: Path) -> ReadingModel:
        model_dir = Path(model_dir)
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        vocab = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))
        tensors = load_file(str(model_dir / "weights.safetensors"))
        vectorizer = make_vectorizer(vocab)
        vectorizer.idf_ = tensors["idf"].astype(np.float64)
        labels = [LabelInfo(item["label"], item["threshold"]) for item in config["labels"]]
        coef = tensors["coef"].astype(np.float32)
        return cls(vectorizer, coef, tensors["intercept"], labels, config["version"])

    def save(self, model_dir: Path, extra: dict[str, Any] | None = None) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        vocab = {str(k): int(v) for k, v in self.vectorizer.vocabulary_.items()}
        (model_dir / "vocab.json").write_text(
            json.dumps(vocab, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
            encoding="utf-8",
        )
        save_file(
            {
                "idf": self.vectorizer.idf_.astype(np.float32),
                # Half precision halves the file; predictions move by < 0.001.
                "coef": np.ascontiguousarray(self._weights.T).astype(np.float16),
                "intercept": self._intercept,
            },
            str(model_dir / "weights.safetensors"),
        )
        config = {
            "version": self.version,
            "kind": "char-ngram-logreg",
            "labels": [{"label": li.label, "threshold": li.threshold} for li in self.labels],
        } | (extra or {})
        (model_dir / "config.json").write_text(
            json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8"
        )

    # -- prediction -----------------------------------------------------------------

    def read(self, text: str, topic: str) -> Reading:
        x = self.vectorizer.transform([document(topic, text)])
        logits = np.asarray(x @ self._weights).ravel() + self._intercept
        probs = 1.0 / (1.0 + np.exp(-logits))
        chosen: list[int] = []
        best_single: dict[str, int] = {}
        for j, info in enumerate(self.labels):
            if probs[j] < info.threshold:
                continue
            field_name = info.label.split("=", 1)[0]
            if self._single.get(field_name, False):
                prev = best_single.get(field_name)
                if prev is None or probs[j] > probs[prev]:
                    best_single[field_name] = j
            else:
                chosen.append(j)
        chosen += best_single.values()
        cols, vals = x.indices, x.data
        slots = []
        for j in sorted(chosen):
            contrib = vals * self._weights[cols, j]
            order = np.argsort(-contrib)
            words: list[str] = []
            for k in order[: 4 * EVIDENCE_WORDS]:
                if contrib[k] <= 0 or len(words) >= EVIDENCE_WORDS:
                    break
                word = surface(str(self._features[cols[k]]))
                # Words of two or more characters explain; a lone 了 or 是 does not.
                if len(word) >= 2 and not any(word in w for w in words):
                    words = [w for w in words if w not in word] + [word]
            slots.append(Slot(self.labels[j].label, round(float(probs[j]), 3), tuple(words)))
        return Reading(tuple(slots), self.version)
