"""Train and evaluate the answer-intent model.

No pretrained Chinese model is available offline, so the model is a small BERT trained
from scratch on the project's own corpus (``nlu/intent/corpus``): a character-level
vocabulary built from the training rows, topic-marker words, and the BERT specials.
Training is plain PyTorch (AdamW, linear warm-up/decay), seeded and single-process, and
takes well under a minute on two CPU cores.

``python -m nlu.intent.train --out nlu/intent/model`` retrains the shipped model;
``python -m nlu.intent.train --eval-only`` prints the held-out figures of an existing one.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from bot.core.vocab import Intent
from nlu.intent.model import DEFAULT_MODEL_DIR, MAX_LENGTH, IntentModel, topic_marker, topic_markers
from nlu.normalize import normalize

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
LABELS: tuple[Intent, ...] = tuple(Intent)

EvalMode = Literal["model", "rules", "combined"]


@dataclass(frozen=True, slots=True)
class Example:
    topic: str
    text: str
    intent: Intent


@dataclass(frozen=True, slots=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(slots=True)
class EvalReport:
    mode: str
    n: int
    accuracy: float
    per_class: dict[str, ClassScores]
    #: (gold, predicted, count), most frequent first.
    confusions: list[tuple[str, str, int]]
    #: Share of rows a rule decided (combined and rules modes).
    rule_coverage: float = 0.0
    errors: list[tuple[str, str, str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class TrainReport:
    out_dir: str
    n_train: int
    n_heldout: int
    epochs: int
    seconds: float
    epoch_losses: list[float]
    vocab_size: int
    parameters: int
    heldout_model: EvalReport | None
    heldout_combined: EvalReport | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Hyper:
    """Model and optimiser settings (small enough for CPU training in seconds)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    dropout: float = 0.1
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1


def read_tsv(path: Path) -> list[Example]:
    """Rows of a ``topic<TAB>text<TAB>intent`` file (header line), text normalised as the
    analyzer would before classification."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [Example(r["topic"], normalize(r["text"]), Intent(r["intent"])) for r in reader]


def build_vocab(texts: Iterable[str]) -> list[str]:
    """Specials, topic markers, every character of the corpus, and ASCII letters/digits
    both word-initial and as ``##`` continuations (English announcements split into
    characters)."""
    chars: set[str] = set()
    for text in texts:
        chars.update(c for c in text.lower() if not c.isspace())
    ascii_alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    chars.update(ascii_alnum)
    vocab = [*SPECIAL_TOKENS, *topic_markers(), *sorted(chars)]
    vocab += [f"##{c}" for c in ascii_alnum]
    return vocab


def make_tokenizer(vocab: Sequence[str], directory: Path) -> Any:
    """A WordPiece BERT tokenizer over ``vocab`` (CJK characters become single tokens)."""
    from transformers import BertTokenizer  # the fast (tokenizers) class in v5

    directory.mkdir(parents=True, exist_ok=True)
    return BertTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        do_lower_case=True,
        tokenize_chinese_chars=True,
        strip_accents=None,
        model_max_length=MAX_LENGTH,
    )


def make_model(vocab_size: int, hyper: Hyper) -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(  # type: ignore[call-arg]  # PretrainedConfig kwargs
        vocab_size=vocab_size,
        hidden_size=hyper.hidden,
        num_hidden_layers=hyper.layers,
        num_attention_heads=hyper.heads,
        intermediate_size=hyper.intermediate,
        max_position_embeddings=MAX_LENGTH,
        type_vocab_size=2,
        hidden_dropout_prob=hyper.dropout,
        attention_probs_dropout_prob=hyper.dropout,
        num_labels=len(LABELS),
        id2label={i: label.value for i, label in enumerate(LABELS)},
        label2id={label.value: i for i, label in enumerate(LABELS)},
        problem_type="single_label_classification",
    )
    return BertForSequenceClassification(config)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def train(
    corpus_dir: Path = CORPUS_DIR,
    out_dir: Path = DEFAULT_MODEL_DIR,
    *,
    epochs: int = 20,
    seed: int = 0,
    max_rows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    hyper: Hyper | None = None,
    threads: int = 2,
) -> TrainReport:
    """Train on ``corpus_dir/train.tsv``, evaluate on ``heldout.tsv`` (when present) and
    save model + tokenizer into ``out_dir``. ``progress(step, total_steps)`` is called
    after every optimiser step. ``max_rows`` takes an evenly spread subset (quick tests).
    """
    hyper = hyper or Hyper()
    started = time.perf_counter()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _seed_everything(seed)
        rows = read_tsv(Path(corpus_dir) / "train.tsv")
        if max_rows is not None and max_rows < len(rows):
            stride = len(rows) / max_rows
            rows = [rows[int(i * stride)] for i in range(max_rows)]
        out_dir = Path(out_dir)
        vocab = build_vocab(r.text for r in rows)
        tokenizer = make_tokenizer(vocab, out_dir)
        model = make_model(len(vocab), hyper)
        losses = _fit(model, tokenizer, rows, epochs, hyper, seed, progress)
        model.eval()
        # Encoding the corpus configured the fast tokenizer's padding and truncation;
        # do not persist that state (inference pads each batch to its own longest row).
        tokenizer.backend_tokenizer.no_padding()
        tokenizer.backend_tokenizer.no_truncation()
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        parameters = sum(p.numel() for p in model.parameters())
    finally:
        torch.set_num_threads(old_threads)
    seconds = time.perf_counter() - started
    heldout = Path(corpus_dir) / "heldout.tsv"
    report = TrainReport(
        out_dir=str(out_dir),
        n_train=len(rows),
        n_heldout=0,
        epochs=epochs,
        seconds=round(seconds, 1),
        epoch_losses=[round(x, 4) for x in losses],
        vocab_size=len(vocab),
        parameters=parameters,
        heldout_model=None,
        heldout_combined=None,
    )
    if heldout.is_file():
        report.heldout_model = evaluate(out_dir, heldout, mode="model")
        report.heldout_combined = evaluate(out_dir, heldout, mode="combined")
        report.n_heldout = report.heldout_model.n
    return report


def _fit(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Example],
    epochs: int,
    hyper: Hyper,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> list[float]:
    """Plain PyTorch loop; returns the mean training loss of each epoch."""
    label_ids = {label: i for i, label in enumerate(LABELS)}
    enc = tokenizer(
        [topic_marker(r.topic) for r in rows],
        [r.text for r in rows],
        padding=True,
        truncation="only_second",
        max_length=MAX_LENGTH,
        return_tensors="pt",
    )
    labels = torch.tensor([label_ids[r.intent] for r in rows])
    steps_per_epoch = math.ceil(len(rows) / hyper.batch_size)
    total = steps_per_epoch * epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=hyper.lr, weight_decay=hyper.weight_decay)
    warmup = max(1, int(total * hyper.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    generator = torch.Generator().manual_seed(seed)
    model.train()
    losses: list[float] = []
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(rows), generator=generator)
        running = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * hyper.batch_size : (b + 1) * hyper.batch_size]
            # Trim the batch to its longest row: most answers are far below MAX_LENGTH.
            width = int(enc["attention_mask"][idx].sum(dim=1).max())
            batch = {k: v[idx, :width] for k, v in enc.items()}
            out = model(**batch, labels=labels[idx])
            optimizer.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += out.loss.item()
            step += 1
            if progress is not None:
                progress(step, total)
        losses.append(running / steps_per_epoch)
    return losses


def score(gold: Sequence[Intent], pred: Sequence[Intent]) -> tuple[float, dict[str, ClassScores]]:
    """Accuracy and per-class precision/recall/F1 (classes present in gold or pred)."""
    n = len(gold)
    accuracy = sum(g == p for g, p in zip(gold, pred, strict=True)) / n if n else 0.0
    per_class: dict[str, ClassScores] = {}
    for label in LABELS:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        n_pred = sum(p == label for p in pred)
        n_gold = sum(g == label for g in gold)
        if not n_pred and not n_gold:
            continue
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label.value] = ClassScores(
            round(precision, 3), round(recall, 3), round(f1, 3), n_gold
        )
    return accuracy, per_class


def evaluate(
    model_dir: Path | None,
    tsv: Path,
    *,
    mode: EvalMode = "combined",
    max_errors: int = 50,
) -> EvalReport:
    """Score ``model_dir`` on a labelled TSV: the model alone (``model``), rules with the
    rules-only fallback (``rules``, ``model_dir`` unused) or the full classifier
    (``combined``)."""
    from nlu.intent.classifier import IntentClassifier, excluded_intents

    rows = read_tsv(Path(tsv))
    items = [(r.text, r.topic) for r in rows]
    if mode == "model":
        if model_dir is None:
            raise ValueError("mode='model' needs a model_dir")
        model = IntentModel.load(Path(model_dir))
        scores = []
        for start in range(0, len(items), 64):
            chunk = items[start : start + 64]
            excludes = [excluded_intents(topic, rule_only=False) for _, topic in chunk]
            scores += model.predict_batch(chunk, excludes=excludes)
    else:
        classifier = IntentClassifier(model_dir if mode == "combined" else None, cache_size=0)
        scores = []
        for start in range(0, len(items), 64):
            scores += classifier.classify_batch(items[start : start + 64])
    gold = [r.intent for r in rows]
    pred = [s.intent for s in scores]
    accuracy, per_class = score(gold, pred)
    confusions = Counter((g.value, p.value) for g, p in zip(gold, pred, strict=True) if g != p)
    errors = [
        (r.topic, r.text, r.intent.value, p.value)
        for r, p in zip(rows, pred, strict=True)
        if r.intent != p
    ]
    rule_share = sum(s.source == "rule" for s in scores) / len(scores) if scores else 0.0
    return EvalReport(
        mode=mode,
        n=len(rows),
        accuracy=round(accuracy, 4),
        per_class=per_class,
        confusions=[(g, p, c) for (g, p), c in confusions.most_common()],
        rule_coverage=round(rule_share if mode != "model" else 0.0, 4),
        errors=errors[:max_errors],
    )


def _print_eval(report: EvalReport) -> None:
    print(f"[{report.mode}] n={report.n} accuracy={report.accuracy:.3f}", end="")
    print(f" rule_coverage={report.rule_coverage:.2f}" if report.mode != "model" else "")
    for label, s in report.per_class.items():
        print(f"  {label:20s} P={s.precision:.2f} R={s.recall:.2f} F1={s.f1:.2f} n={s.support}")
    for gold, pred, count in report.confusions[:10]:
        print(f"  confusion {gold} -> {pred}: {count}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the answer-intent model.")
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--eval-only", action="store_true", help="evaluate --out, no training")
    args = parser.parse_args(argv)
    heldout = args.corpus / "heldout.tsv"
    if args.eval_only:
        modes: tuple[EvalMode, ...] = ("rules", "model", "combined")
        for mode in modes:
            _print_eval(evaluate(args.out, heldout, mode=mode))
        return
    report = train(
        args.corpus, args.out, epochs=args.epochs, seed=args.seed, max_rows=args.max_rows
    )
    print(
        f"trained on {report.n_train} rows in {report.seconds:.1f}s, "
        f"{report.parameters} parameters, losses {report.epoch_losses[0]:.3f} -> "
        f"{report.epoch_losses[-1]:.3f}; saved to {report.out_dir}"
    )
    for ev in (report.heldout_model, report.heldout_combined):
        if ev is not None:
            _print_eval(ev)
    summary = {k: v for k, v in report.to_dict().items() if not k.startswith("heldout")}
    summary["heldout_accuracy"] = {
        "model": report.heldout_model.accuracy if report.heldout_model else None,
        "combined": report.heldout_combined.accuracy if report.heldout_combined else None,
    }
    (args.out / "training_report.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
