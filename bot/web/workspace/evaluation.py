"""The text evaluation of a version, run from the workspace before it is published.

The version runs through :func:`bot.evaluation.run_cases` on the public personas
(``../shared/personas``) and the repository's tuning personas (``eval_personas/tuning``),
next to the published set on the same personas, so the difference is the document's.
NLU is rules-only here (no intent model in the web process): the whole run takes well
under a second, and both sides use the same analyzer, but absolute numbers are those of
``bot eval`` with ``intent_model_enabled = false``.

Each run is kept as the detail of an ``evaluate`` audit event (no extra table): the
version page shows the latest one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from sqlmodel import Session, col, select

from bot.core.investigation import DialogueLimits, Investigator
from bot.core.policy import Policy
from bot.core.routing import load_router
from bot.core.scoring import RiskScorer, RuleSet
from bot.core.scripts import TemplateLibrary, parse_model
from bot.core.yamlsource import SourceFileError
from bot.evaluation import PersonaCase, run_cases, summarise
from bot.settings import REPO_ROOT, Settings
from bot.store.models import AuditEventRow
from bot.templates_store import RULESET_FILE, PublishedSet, base_ruleset_path
from bot.web.audit import audit
from bot.web.i18n import N_
from bot.web.workspace.checks import Draft, library_with
from bot.web.workspace.documents import Version, WorkspaceError
from bot.web.workspace.preview import public_personas_dir

ACTION = "evaluate"


def persona_sets() -> dict[str, Path]:
    return {"public": public_personas_dir(), "tuning": REPO_ROOT / "eval_personas" / "tuning"}


def load_cases(sets: list[str], only: list[str] | None) -> tuple[list[PersonaCase], list[str]]:
    """The personas of ``sets`` (optionally only the ids in ``only``), and load errors."""
    from bot.sim.personas import load_dir

    known = persona_sets()
    cases: list[PersonaCase] = []
    errors: list[str] = []
    for name in sets:
        folder = known.get(name)
        if folder is None:
            raise WorkspaceError(
                422,
                N_("unknown persona set '%(name)s' (known: %(known)s)"),
                name=name,
                known=", ".join(known),
            )
        if not folder.is_dir():
            errors.append(f"{name}: no persona directory at {folder}")
            continue
        personas, bad = load_dir(folder)
        cases += [p.to_case() for p in personas if not only or p.id in only]
        errors += [f"{name}/{e.file}: {e}" for e in bad]
    return cases, errors


@cache
def _analyzer(cache_size: int) -> Any:
    from nlu.analyzer import Analyzer

    return Analyzer(None, cache_size=cache_size)


def investigator(settings: Settings, library: TemplateLibrary, ruleset: RuleSet) -> Investigator:
    router, _ = load_router(settings.templates_dir, settings.tiers.medium, settings.tiers.high)
    return Investigator(
        library,
        router,
        RiskScorer(ruleset),
        Policy.from_file(
            settings.policy_file,
            sample_rate=settings.review_sample_rate,
            sample_seed=settings.review_sample_seed,
        ),
        _analyzer(settings.nlu_cache_size),
        bank_name=settings.bank_name,
        limits=DialogueLimits(
            max_turns=settings.budget.max_turns,
            max_seconds=settings.budget.max_seconds,
            refusals_to_end=settings.budget.refusals_to_end,
        ),
    )


def _ruleset(settings: Settings, source: str | None) -> RuleSet:
    text = source if source is not None else base_ruleset_path(settings).read_text("utf-8")
    try:
        ruleset, _ = parse_model(text, str(RULESET_FILE), RuleSet)
    except SourceFileError as exc:
        raise WorkspaceError(422, N_("the rule set does not load: fix its errors first")) from exc
    return ruleset


@dataclass
class Side:
    """One set of documents evaluated: its summary and a line per persona."""

    label: str
    summary: dict[str, Any]
    personas: list[dict[str, Any]] = field(default_factory=list)


class Evaluation(NamedTuple):
    """One run: this version, the published set, and the persona sets used (a tuple, so
    the templates unpack it)."""

    version: Side
    published: Side
    sets: list[str]


def _compact(entry: dict[str, Any]) -> dict[str, Any]:
    exp = entry.get("expected") or {}
    return {
        "id": entry["id"],
        "pass": bool(entry["pass"]),
        "outcome": entry.get("outcome"),
        "expected_outcome": exp.get("outcome"),
        "risk_band": entry.get("risk_band"),
        "expected_band": exp.get("risk_band"),
        "disposition": entry.get("disposition"),
        "error": entry.get("error", ""),
    }


#: Called after each persona run with (runs done, runs in all).
Progress = Callable[[int, int], None]


@dataclass
class Plan:
    """An evaluation ready to run: the cases, and each side's library and rules (the
    published side left out when the version is the published one)."""

    settings: Settings
    cases: list[PersonaCase]
    load_errors: list[str]
    sides: list[tuple[str, TemplateLibrary, RuleSet]]

    @property
    def total(self) -> int:
        """Persona runs in all (each side runs every case)."""
        return len(self.cases) * len(self.sides)

    def run(self, progress: Progress | None = None) -> tuple[Side, Side]:
        """(this version, the published set); ``progress`` after each persona run."""
        done = 0

        def step(_case_id: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, self.total)

        out = [
            _run(self.settings, label, library, rules, self.cases, self.load_errors, step)
            for label, library, rules in self.sides
        ]
        return out[0], out[-1]


def _run(
    settings: Settings,
    label: str,
    library: TemplateLibrary,
    ruleset: RuleSet,
    cases: list[PersonaCase],
    load_errors: list[str],
    progress: Callable[[str], None] | None = None,
) -> Side:
    entries = run_cases(investigator(settings, library, ruleset), cases, progress)
    return Side(label, summarise(entries, load_errors), [_compact(e) for e in entries])


def plan(
    settings: Settings,
    published: PublishedSet,
    version: Version,
    published_version: Version,
    sets: list[str],
    only: list[str] | None = None,
) -> Plan:
    """What :func:`evaluate` runs: refused (422) when there are no personas or the rule
    set does not load."""
    assert version.source is not None
    cases, load_errors = load_cases(sets, only)
    if not cases:
        raise WorkspaceError(422, N_("no personas to run (check the sets and ids)"))
    current_rules = _ruleset(settings, published.ruleset)
    if version.kind.in_tree:
        library = library_with(
            settings, published, Draft(version.kind, version.doc, version.source)
        )
        rules = current_rules
    else:
        library = library_with(settings, published)
        rules = _ruleset(settings, version.source)
    sides = [(f"v{version.version}", library, rules)]
    if version.version != published_version.version:
        label = f"v{published_version.version} (published)"
        sides.append((label, library_with(settings, published), current_rules))
    return Plan(settings, cases, load_errors, sides)


def evaluate(
    settings: Settings,
    published: PublishedSet,
    version: Version,
    published_version: Version,
    sets: list[str],
    only: list[str] | None = None,
    progress: Progress | None = None,
) -> tuple[Side, Side]:
    """(this version, the published set) on the same personas."""
    return plan(settings, published, version, published_version, sets, only).run(progress)


def store(
    session: Session, actor: str, version: Version, sets: list[str], mine: Side, theirs: Side
) -> None:
    audit(
        session,
        actor,
        ACTION,
        version.object_type,
        version.ref,
        sets=sets,
        version=asdict(mine),
        published=asdict(theirs),
    )


def latest(session: Session, version: Version) -> Evaluation | None:
    """The last evaluation stored for ``version``."""
    row = session.exec(
        select(AuditEventRow)
        .where(
            AuditEventRow.action == ACTION,
            AuditEventRow.object_type == version.object_type,
            AuditEventRow.object_id == version.ref,
        )
        .order_by(col(AuditEventRow.id).desc())
    ).first()
    if row is None:
        return None
    d = row.detail
    return Evaluation(Side(**d["version"]), Side(**d["published"]), list(d.get("sets", [])))
