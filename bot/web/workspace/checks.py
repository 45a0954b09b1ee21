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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.core.lint import lint_library, render_problems
from bot.core.messages import Message, Params, params_json
from bot.core.routing import load_router
from bot.core.scoring import RiskScorer, RuleSet
from bot.core.script_model import BlockFile, LanguagePack
from bot.core.scripts import DUPLICATE_BLOCK, Script, TemplateLibrary, parse_model
from bot.core.scripts import _Block as Block
from bot.core.template_screen import screen
from bot.core.yamlsource import SourceError, SourceFileError
from bot.settings import Settings
from bot.templates_store import FOLDERS, RULESET_FILE, PublishedSet, packaged_docs
from bot.web.i18n import N_
from bot.web.workspace.documents import Documents, Kind


@dataclass(frozen=True)
class Problem:
    """One finding, located for the editor: ``file`` is relative to the templates tree
    (the document itself is ``scripts/<id>.yaml`` or ``rulesets/default.yaml``).

    ``message`` is the English text (kept in audit records and the API), ``template``
    and ``params`` its message id and values, shown in the reader's language with
    :meth:`shown` (empty for a parser's own text, shown as it is)."""

    file: str
    line: int | None
    field: str
    message: str
    template: str = ""
    params: Params = ()

    @classmethod
    def of(
        cls, file: str, line: int | None, field: str, template: str, **params: object
    ) -> Problem:
        return cls.located(SourceError.of(file, line, field, template, **params))

    @classmethod
    def located(cls, error: SourceError, file: str | None = None) -> Problem:
        """``error`` as a problem, at ``file`` if given (relative to the tree)."""
        at = error.file if file is None else file
        return cls(at, error.line, error.field, error.message, error.template, error.params)

    def shown(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of ``gettext``."""
        if not self.template:
            return self.message
        return Message(self.template, self.params).shown(gettext)

    def as_json(self) -> dict[str, Any]:
        """What the editor's script reads: the located message with its id and values
        (``params``: name -> text or ``{"template", "params"}``) to translate."""
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "template": self.template,
            "params": params_json(self.params),
        }


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
    return str(RULESET_FILE) if kind is Kind.RULESETS else f"{kind.value}/{doc}.yaml"


# -- the library with a draft in place --------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """One document's text put in place of what runs (a draft being checked, previewed
    or evaluated)."""

    kind: Kind
    doc: str
    source: str


def tree_sources(
    settings: Settings, published: PublishedSet, draft: Draft | None = None
) -> dict[str, dict[str, str]]:
    """Folder -> file stem -> source of what the bot would run: the packaged files, the
    published versions over them, and ``draft`` over those."""
    root = settings.templates_dir
    out = {}
    for folder in FOLDERS:
        docs = packaged_docs(root, folder) | published.folder(folder)
        if draft is not None and draft.kind.value == folder:
            docs[draft.doc] = draft.source
        out[folder] = docs
    return out


# Parsed blocks and packs are shared between libraries (never mutated): a lint as one
# types re-parses only the document being edited.
@lru_cache(maxsize=256)
def _block(text: str, file: str) -> tuple[Block | None, tuple[SourceError, ...]]:
    try:
        spec, lines = parse_model(text, file, BlockFile)
    except SourceFileError as exc:
        return None, tuple(exc.errors)
    return Block(spec, lines, file, text), ()


@lru_cache(maxsize=64)
def _language(text: str, file: str) -> tuple[LanguagePack | None, tuple[SourceError, ...]]:
    try:
        pack, _lines = parse_model(text, file, LanguagePack)
    except SourceFileError as exc:
        return None, tuple(exc.errors)
    return pack, ()


def library_with(
    settings: Settings, published: PublishedSet, draft: Draft | None = None
) -> TemplateLibrary:
    """The library the bot would run with ``draft`` in place: packaged languages, blocks
    and scripts, the published versions over them, the draft over those."""
    root = settings.templates_dir
    sources = tree_sources(settings, published, draft)
    lib = TemplateLibrary(root=root)
    for stem, text in sorted(sources["languages"].items()):
        pack, errors = _language(text, str(root / "languages" / f"{stem}.yaml"))
        lib.errors += errors
        if pack is not None:
            lib.languages[pack.language] = pack
    for stem, text in sorted(sources["blocks"].items()):
        file = str(root / "blocks" / f"{stem}.yaml")
        block, errors = _block(text, file)
        lib.errors += errors
        if block is None:
            continue
        if block.spec.id in lib.blocks:
            line = block.lines.line(("id",))
            lib.errors.append(
                SourceError.of(file, line, "id", DUPLICATE_BLOCK, block=block.spec.id)
            )
            continue
        lib.blocks[block.spec.id] = block
    for sid, text in sorted(sources["scripts"].items()):
        lib.add_script_source(text, str(root / "scripts" / f"{sid}.yaml"))
    return lib


def _relative(settings: Settings, error: SourceError) -> Problem:
    path = Path(error.file)
    root = settings.templates_dir
    file = str(path.relative_to(root)) if path.is_relative_to(root) else error.file
    return Problem.located(error, file)


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


def _render_all(settings: Settings, script: Script, report: Report) -> None:
    for problem in render_problems(script, settings.bank_name):
        found = _relative(settings, problem.error)
        if problem.refused:
            report.refused.append(found)
        elif not any(p.file == found.file and p.line == found.line for p in report.errors):
            report.errors.append(found)


def _screen(source: str, file: str) -> list[Problem]:
    return [Problem.located(e) for e in screen(source, file)]


def _render_scripts(settings: Settings, scripts: list[Script], report: Report) -> None:
    for script in scripts:
        _render_all(settings, script, report)


def _using(lib: TemplateLibrary, settings: Settings, file: str) -> list[Script]:
    """The scripts with a node written in ``file`` (a block's scripts)."""
    path = str(settings.templates_dir / file)
    return [s for s in lib.scripts.values() if any(n.origin.file == path for n in s.nodes.values())]


def _same_id(source: str, file: str, model: type[BlockFile] | type[LanguagePack]) -> str | None:
    """The ``id`` (block) or ``language`` (pack) of ``source``, if it parses."""
    try:
        parsed, _ = parse_model(source, file, model)
    except SourceFileError:
        return None
    return parsed.id if isinstance(parsed, BlockFile) else parsed.language


def _reply_problems(settings: Settings, source: str, file: str) -> list[Problem]:
    """A language pack's fixed phrases are ``str.format`` text with ``{bank_name}`` and
    ``{hotline}`` only: anything else would fail in the middle of a call."""
    try:
        pack, lines = parse_model(source, file, LanguagePack)
    except SourceFileError:
        return []
    found = []
    phrases: list[tuple[tuple[str, ...], str]]
    phrases = [(("replies", k), v) for k, v in pack.replies.model_dump().items()]
    phrases.append((("hotline_fallback",), pack.hotline_fallback))
    for path, text in phrases:
        try:
            text.format(bank_name=settings.bank_name, hotline=settings.bank_hotline or "95555")
        except (KeyError, IndexError, ValueError) as exc:
            only = N_("only {bank_name} and {hotline} can be used here (%(reason)s)")
            found.append(Problem.of(file, lines.line(path), ".".join(path), only, reason=repr(exc)))
    return found


def check_tree_document(
    settings: Settings, published: PublishedSet, kind: Kind, doc: str, source: str
) -> Report:
    """A script, block or language pack, checked inside the whole library it would run
    in: its own errors, and what it breaks elsewhere (a script including a block)."""
    file = document_file(kind, doc)
    report = Report(file, refused=_screen(source, file))
    if report.refused:
        return report  # never compile or render what tries to escape
    lib = library_with(settings, published, Draft(kind, doc, source))
    errors = lint_library(lib, settings.bank_name, renders=False) + _router_errors(settings, lib)
    report.errors = sorted(
        {_relative(settings, e) for e in errors},
        key=lambda p: (p.file != file, p.file, p.line or 0),
    )
    mine = any(p.file == file for p in report.errors)
    if kind is Kind.SCRIPTS:
        script = lib.scripts.get(doc)
        if script is None and not mine:
            stay = N_("the script's id must stay '%(id)s'")
            report.errors.insert(0, Problem.of(file, _id_line(source), "id", stay, id=doc))
        if script is not None:
            _render_all(settings, script, report)
        return report
    model = BlockFile if kind is Kind.BLOCKS else LanguagePack
    expected = _same_id(Documents.packaged_text(settings, kind, doc), file, model)
    got = _same_id(source, file, model)
    if got is not None and got != expected:
        key = "id" if kind is Kind.BLOCKS else "language"
        line = _key_line(source, key)
        stay = N_("the id must stay '%(id)s'") if kind is Kind.BLOCKS else _LANGUAGE_STAYS
        report.errors.insert(0, Problem.of(file, line, key, stay, id=expected))
    if kind is Kind.LANGUAGES:
        report.errors += _reply_problems(settings, source, file)
        language = got or ""
        scripts = [s for s in lib.scripts.values() if s.language == language]
    else:
        scripts = _using(lib, settings, file)
    _render_scripts(settings, scripts, report)
    return report


_LANGUAGE_STAYS = N_("the language must stay '%(id)s'")


def _key_line(source: str, key: str) -> int | None:
    match = re.search(rf"^{key}\s*:", source, re.M)
    return source.count("\n", 0, match.start()) + 1 if match else None


def _id_line(source: str) -> int | None:
    return _key_line(source, "id")


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
        unusable = N_("the rule set cannot be used: %(reason)s")
        report.errors = [Problem.of(file, None, "", unusable, reason=exc)]
    return report


def check(settings: Settings, published: PublishedSet, kind: Kind, doc: str, source: str) -> Report:
    if kind is Kind.RULESETS:
        return check_ruleset(settings, source)
    return check_tree_document(settings, published, kind, doc, source)
