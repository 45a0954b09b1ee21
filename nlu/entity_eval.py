"""Per-label precision/recall/F1 of the entity extractor on the annotated sets.

``python -m nlu.entity_eval`` scores both splits (``tune`` may be looked at while
writing rules, ``heldout`` may not), prints the tables and writes them into
``docs/nlu-entities.md`` between the ``entity-eval`` markers.

Scoring: per utterance, gold and predicted entities are sets of ``(label, value,
negated)``. A prediction matches a gold item with the same label and negation when its
value *or* its surface text equals the gold value (the persona contract's rule).
Precision counts matched predictions, recall matched gold items; ``all`` is micro-averaged.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlu.data import load_yaml
from nlu.entities import EntityExtractor
from nlu.normalize import normalize
from nlu.types import Entity, NluContext

SPLITS = ("tune", "heldout")
DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "nlu-entities.md"
BEGIN_MARK = "<!-- entity-eval:start -->"
END_MARK = "<!-- entity-eval:end -->"
NEGATION_MARK = "~"


@dataclass(frozen=True, slots=True)
class GoldEntity:
    label: str
    value: str
    negated: bool = False

    @classmethod
    def parse(cls, item: str) -> GoldEntity:
        """``"purpose=salary"`` or ``"~purpose=salary"`` (negated)."""
        negated = item.startswith(NEGATION_MARK)
        label, _, value = item.removeprefix(NEGATION_MARK).partition("=")
        return cls(label.strip(), value.strip(), negated)

    def matches(self, entity: Entity) -> bool:
        return (
            entity.label.value == self.label
            and entity.negated == self.negated
            and self.value in (entity.value, entity.text)
        )


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    gold: frozenset[GoldEntity]
    known_names: tuple[str, ...] = ()


@dataclass
class Counts:
    predicted: int = 0
    predicted_ok: int = 0
    gold: int = 0
    gold_found: int = 0

    @property
    def precision(self) -> float:
        return self.predicted_ok / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.gold_found / self.gold if self.gold else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class SplitReport:
    name: str
    n: int
    by_label: dict[str, Counts] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def overall(self) -> Counts:
        total = Counts()
        for c in self.by_label.values():
            total.predicted += c.predicted
            total.predicted_ok += c.predicted_ok
            total.gold += c.gold
            total.gold_found += c.gold_found
        return total


def load_split(name: str) -> list[Example]:
    """The examples of one split (``tune`` or ``heldout``)."""
    raw: list[dict[str, Any]] = load_yaml(f"entity_eval/{name}.yaml")
    return [
        Example(
            text=item["text"],
            gold=frozenset(GoldEntity.parse(g) for g in item.get("gold") or ()),
            known_names=tuple(item.get("known_names") or ()),
        )
        for item in raw
    ]


def _unique_predictions(entities: Iterable[Entity]) -> list[Entity]:
    seen: dict[tuple[str, str, bool], Entity] = {}
    for e in entities:
        seen.setdefault((e.label.value, e.value, e.negated), e)
    return list(seen.values())


def score(extractor: EntityExtractor, name: str, examples: Sequence[Example]) -> SplitReport:
    """Per-label counts over ``examples``; mismatches are kept as readable lines."""
    counts: dict[str, Counts] = defaultdict(Counts)
    report = SplitReport(name, len(examples))
    for ex in examples:
        text = normalize(ex.text)
        predicted = _unique_predictions(
            extractor.extract(text, NluContext(known_names=ex.known_names))
        )
        for p in predicted:
            ok = any(g.matches(p) for g in ex.gold)
            counts[p.label.value].predicted += 1
            counts[p.label.value].predicted_ok += ok
            if not ok:
                report.errors.append(
                    f"FP {p.label.value}={p.value} ({p.text}) neg={p.negated}: {text}"
                )
        for g in ex.gold:
            found = any(g.matches(p) for p in predicted)
            counts[g.label].gold += 1
            counts[g.label].gold_found += found
            if not found:
                report.errors.append(f"FN {g.label}={g.value} neg={g.negated}: {text}")
    report.by_label = dict(sorted(counts.items()))
    return report


def markdown_table(report: SplitReport) -> str:
    """One split as a markdown table (labels, then the micro-averaged ``all`` row)."""
    lines = [
        f"**{report.name}** ({report.n} utterances)",
        "",
        "| label | gold | predicted | precision | recall | F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [*report.by_label.items(), ("**all**", report.overall)]
    for label, c in rows:
        lines.append(
            f"| {label} | {c.gold} | {c.predicted} | {c.precision:.2f} | {c.recall:.2f} | {c.f1:.2f} |"
        )
    return "\n".join(lines)


def write_doc(tables: str, path: Path = DOC_PATH) -> None:
    """Replace the block between the markers of ``path`` (appended when absent)."""
    block = f"{BEGIN_MARK}\n{tables}\n{END_MARK}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# NLU entities\n"
    if BEGIN_MARK in text and END_MARK in text:
        head, _, rest = text.partition(BEGIN_MARK)
        _, _, tail = rest.partition(END_MARK)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Evaluation\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def run(
    splits: Sequence[str] = SPLITS, extractor: EntityExtractor | None = None
) -> list[SplitReport]:
    """Score the given splits."""
    extractor = extractor or EntityExtractor()
    return [score(extractor, name, load_split(name)) for name in splits]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--doc", type=Path, default=DOC_PATH, help="markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--errors",
        choices=SPLITS,
        help="also list the mismatches of this split (tune only, please)",
    )
    args = parser.parse_args(argv)
    reports = run()
    tables = "\n\n".join(markdown_table(r) for r in reports)
    print(tables)
    for r in reports:
        if r.name == args.errors:
            print(f"\n{r.name} mismatches:", *r.errors, sep="\n  ")
    if not args.no_write:
        write_doc(tables, args.doc)
        print(f"\nwrote {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
