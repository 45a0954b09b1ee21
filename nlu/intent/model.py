"""The trained answer-intent model: a small BERT sequence classifier over characters.

The question's topic is fed to the model as the first segment of a sentence pair,
``[CLS] topic<key> [SEP] utterance [SEP]``, so the same words can mean different things
under different questions (我老婆 is ``custody_family`` under ``card_custody`` and
``inform`` under ``counterparty``). Topic keys outside the investigation topics (opening,
closing, confirm...) are read as ``default``.

Any directory written by ``save_pretrained`` with an ``id2label`` naming :class:`Intent`
values loads here, so a bank can point the classifier at its own, bigger fine-tuned
model (see ``docs/nlu-intents.md``); only the topic-marker convention must be kept.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch

from bot.core.vocab import Intent, Topic
from nlu.types import IntentScore

SOURCE = "model"
#: The model shipped with the package (``python -m nlu.intent.train`` writes it).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "model"
MAX_LENGTH = 64

_TOPICS = frozenset(t.value for t in Topic)


def topic_marker(topic: str) -> str:
    """The vocabulary word that stands for ``topic`` (one token: ASCII, no punctuation)."""
    key = topic if topic in _TOPICS else Topic.DEFAULT.value
    return "topic" + key.replace("_", "")


def topic_markers() -> list[str]:
    return [topic_marker(t.value) for t in Topic]


class IntentModel:
    """Wraps a ``transformers`` sequence classifier and its tokenizer for inference."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        id2label: dict[int, str] = {int(k): v for k, v in model.config.id2label.items()}
        unknown = {v for v in id2label.values()} - {i.value for i in Intent}
        if unknown:
            raise ValueError(f"model labels are not Intent values: {sorted(unknown)}")
        self.labels: list[Intent] = [Intent(id2label[i]) for i in range(len(id2label))]

    @classmethod
    def load(cls, path: Path) -> IntentModel:
        """Load model and tokenizer from a local directory (never from a model hub)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no intent model in {path} (config.json missing)")
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no bars in worker logs
        model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(model, tokenizer)

    def _encode(self, items: Sequence[tuple[str, str]]) -> Any:
        return self.tokenizer(
            [topic_marker(topic) for _, topic in items],
            [text for text, _ in items],
            padding=True,
            truncation="only_second",
            max_length=MAX_LENGTH,
            return_tensors="pt",
        )

    def probabilities(self, items: Sequence[tuple[str, str]]) -> torch.Tensor:
        """Softmax over :attr:`labels` for each ``(text, topic)``; shape ``(n, n_labels)``."""
        if not items:
            return torch.empty(0, len(self.labels))
        with torch.inference_mode():
            logits = self.model(**self._encode(items)).logits
            return torch.softmax(logits.float(), dim=-1)

    def _best(self, probs: torch.Tensor, exclude: Collection[Intent]) -> IntentScore:
        if exclude:
            probs = probs.clone()
            for i, label in enumerate(self.labels):
                if label in exclude:
                    probs[i] = 0.0
            total = float(probs.sum())
            if total > 0.0:
                probs /= total
        index = int(torch.argmax(probs))
        return IntentScore(self.labels[index], float(probs[index]), SOURCE)

    def predict(self, text: str, topic: str, *, exclude: Collection[Intent] = ()) -> IntentScore:
        """Most probable intent; ``exclude`` removes labels that cannot apply here (the
        confidence is renormalised over the labels that remain)."""
        return self._best(self.probabilities([(text, topic)])[0], exclude)

    def predict_batch(
        self,
        items: Sequence[tuple[str, str]],
        *,
        excludes: Sequence[Collection[Intent]] | None = None,
    ) -> list[IntentScore]:
        """:meth:`predict` for many ``(text, topic)`` pairs in one forward pass;
        ``excludes`` gives each item's excluded labels."""
        probs = self.probabilities(items)
        if excludes is None:
            return [self._best(row, ()) for row in probs]
        if len(excludes) != len(items):
            raise ValueError("excludes must have one entry per item")
        return [self._best(row, ex) for row, ex in zip(probs, excludes, strict=True)]
