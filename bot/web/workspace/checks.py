"""Checking a document before it is stored, submitted or published.

Two kinds of finding:

* **refusals** — a template that tries to leave Jinja2's sandbox (``''.__class__``,
  ``cycler.__init__.__globals__``, ``|attr(...)``, any ``_``-prefixed attribute or key),
  to load other templates, or to exhaust the worker (``9**9**9``, huge ranges, nested
  loops). Such a source is never stored; the attempt is audited as ``template_rejected``.
  The screen is static (:mod:`bot.core.template_screen`), and every prompt is then
  rendered in the sandbox under the render limits (:mod:`bot.core.render_budget`), where
  a ``SecurityError`` or a limit exceeded is a refusal too.
* **errors** — everything ``bot scripts lint`` and the worker's start-up check report:
  YAML syntax, schema, lint of the whole library with the draft in place, the routing
  table, and prompts that cannot be rendered for a sample account. A draft may be saved
  with errors (work in progress), but not submitted or published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bot.core.lint import lint_library, render_problems
from bot.core.routing import load_router
from bot.core.scoring import RiskScorer, RuleSet
from bot.core.scripts import Script, TemplateLibrary, load_library, parse_model
from bot.core.template_screen import screen
from bot.core.yamlsource import SourceError, SourceFileError
from bot.settings import Settings
from bot.templates_store import RULESET_FILE, PublishedSet, packaged_scripts
from bot.web.workspace.documents import Kind


@dataclass(frozen=True)
class Problem:
    """One finding, located for the editor: ``file`` is relative to the templates tree
    (the document itself is ``scripts/<id>.yaml`` or ``rulesets/default.yaml``)."""

    file: str
    line: int | None
    field: str
    message: str


@dataclass
class Report:
    file: str
    errors: list[Problem] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.refused

    @property
    def problems(self) -> list[Problem]:
        """Everything found, refusals first (as the editor and the version page list it)."""
        return self.refused + self.errors


def document_file(kind: Kind, doc: str) -> str:
    return str(RULESET_FILE) if kind is Kind.RULESETS else f"scripts/{doc}.yaml"


# -- the library with a draft in place --------------------------------------------------


def _fingerprint(root: Path) -> tuple[tuple[str, int], ...]:
    files = [*(root / "blocks").glob("*.yaml"), *(root / "languages").glob("*.yaml")]
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=4)
def _base(root: Path, _fingerprint: tuple[tuple[str, int], ...]) -> TemplateLibrary:
    return load_library(root)


def base_library(templates_dir: Path) -> TemplateLibrary:
    """The packaged library (blocks and languages are shared, never mutated), loaded
    again only when a block or language file changes."""
    return _base(templates_dir, _fingerprint(templates_dir))


def library_with(
    settings: Settings, published: PublishedSet, overrides: dict[str, str] | None = None
) -> TemplateLibrary:
    """The packaged blocks and languages, the published scripts over the packaged ones,
    and ``overrides`` (script id -> source) over those: what the bot would run."""
    root = settings.templates_dir
    base = base_library(root)
    lib = TemplateLibrary(
        root=root,
        languages=base.languages,
        blocks=base.blocks,
        errors=[e for e in base.errors if Path(e.file).parent.name != "scripts"],
    )
    sources = packaged_scripts(root) | published.scripts | (overrides or {})
    for sid in sorted(sources):
        lib.add_script_source(sources[sid], str(root / "scripts" / f"{sid}.yaml"))
    return lib


def _relative(settings: Settings, error: SourceError) -> Problem:
    path = Path(error.file)
    root = settings.templates_dir
    file = str(path.relative_to(root)) if path.is_relative_to(root) else error.file
    return Problem(file, error.line, error.field, error.message)


def _router_errors(settings: Settings, lib: TemplateLibrary) -> list[SourceError]:
    try:
        router, lines = load_router(
            settings.templates_dir, settings.tiers.medium, settings.tiers.high
        )
    except SourceFileError as exc:
        return exc.errors
    return router.check(
        {s.id: (set(s.scenarios), set(s.tiers)) for s in lib.scripts.values()}, lines
    )


def _id_line(source: str) -> int | None:
    match = re.search(r"^id\s*:", source, re.M)
    return source.count("\n", 0, match.start()) + 1 if match else None


def _render_all(settings: Settings, script: Script, report: Report) -> None:
    for problem in render_problems(script, settings.bank_name):
        found = _relative(settings, problem.error)
        if problem.refused:
            report.refused.append(found)
        elif not any(p.file == found.file and p.line == found.line for p in report.errors):
            report.errors.append(found)


def _screen(source: str, file: str) -> list[Problem]:
    return [Problem(e.file, e.line, e.field, e.message) for e in screen(source, file)]


def check_script(settings: Settings, published: PublishedSet, doc: str, source: str) -> Report:
    file = document_file(Kind.SCRIPTS, doc)
    report = Report(file, refused=_screen(source, file))
    if report.refused:
        return report  # never compile or render what tries to escape
    lib = library_with(settings, published, {doc: source})
    errors = lint_library(lib, settings.bank_name, renders=False) + _router_errors(settings, lib)
    report.errors = sorted(
        {_relative(settings, e) for e in errors},
        key=lambda p: (p.file != file, p.file, p.line or 0),
    )
    script = lib.scripts.get(doc)
    if script is None and not any(p.file == file for p in report.errors):
        report.errors.insert(
            0, Problem(file, _id_line(source), "id", f"the script's id must stay '{doc}'")
        )
    if script is not None:
        _render_all(settings, script, report)
    return report


def check_ruleset(settings: Settings, source: str) -> Report:
    file = document_file(Kind.RULESETS, "default")
    report = Report(file, refused=_screen(source, file))
    if report.refused:
        return report
    try:
        ruleset, _ = parse_model(source, file, RuleSet)
        RiskScorer(ruleset)
    except SourceFileError as exc:
        report.errors = [_relative(settings, e) for e in exc.errors]
    except (ValueError, TypeError) as exc:
        report.errors = [Problem(file, None, "", f"the rule set cannot be used: {exc}")]
    return report


def check(settings: Settings, published: PublishedSet, kind: Kind, doc: str, source: str) -> Report:
    if kind is Kind.RULESETS:
        return check_ruleset(settings, source)
    return check_script(settings, published, doc, source)
