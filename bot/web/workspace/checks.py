"""Checking a document before it is stored, submitted or published.

Two kinds of finding:

* **refusals** — a template that tries to leave Jinja2's sandbox (``''.__class__``,
  ``cycler.__init__.__globals__``, ``|attr(...)``, any ``_``-prefixed attribute or key),
  to load other templates, or to exhaust the worker (``9**9**9``, huge ranges, nested
  loops). Such a source is never stored; the attempt is audited as ``template_rejected``.
  The screen is static (the Jinja2 AST of every prompt, plus a raw-text pass that also
  covers YAML that does not parse), and every prompt is then rendered in the sandbox,
  where a ``SecurityError`` is a refusal too.
* **errors** — everything ``bot scripts lint`` and the worker's start-up check report:
  YAML syntax, schema, lint of the whole library with the draft in place, the routing
  table, and prompts that cannot be rendered for a sample account. A draft may be saved
  with errors (work in progress), but not submitted or published.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError

from bot.core.account import Account, sample_account, template_variables
from bot.core.lint import lint_library, pre_identity_nodes
from bot.core.routing import load_router
from bot.core.scoring import RiskScorer, RuleSet
from bot.core.scripts import Script, TemplateLibrary, load_library, parse_model
from bot.core.templating import PromptError, environment, render
from bot.core.yamlsource import SourceError, SourceFileError, load_yaml
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


# -- the sandbox screen -----------------------------------------------------------------

#: Jinja2's default globals (and names that templating engines commonly expose) are the
#: usual first step of a sandbox escape; prompts only need the account's variables.
_ESCAPE_NAMES = frozenset({"cycler", "joiner", "namespace", "lipsum", "self", "config", "request"})
#: Attributes the sandbox blocks besides ``_``-prefixed ones (frames, code, globals).
_INTERNAL_ATTRS = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "tb_frame",
        "format_map",
    }
)
_MAX_RANGE = 100
_MAX_FACTOR = 1000


def _const_str(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _reason(node: nodes.Node, loop_depth: int) -> str | None:
    """Why ``node`` is refused, or None."""
    if isinstance(node, nodes.Getattr):
        if node.attr.startswith("_") or node.attr in _INTERNAL_ATTRS:
            return f"access to the internal attribute '{node.attr}'"
    elif isinstance(node, nodes.Getitem):
        key = node.arg
        if not isinstance(key, nodes.Const):
            return "a computed subscript (prompts may only use constant keys)"
        if isinstance(key.value, str) and key.value.startswith("_"):
            return f"access to the internal key '{key.value}'"
    elif isinstance(node, nodes.Keyword) and node.key == "attribute":
        value = _const_str(node.value)
        if value is None or value.startswith("_"):
            return "an 'attribute=' argument naming an internal or computed attribute"
    elif isinstance(node, nodes.Filter | nodes.Test) and node.name == "attr":
        return "the 'attr' filter (it reaches object internals)"
    elif isinstance(node, nodes.Name) and node.name in _ESCAPE_NAMES:
        return f"the Jinja global '{node.name}' (a known sandbox escape route)"
    elif isinstance(node, nodes.Const) and isinstance(node.value, str) and "__" in node.value:
        return "a string naming a dunder ('__'): a sandbox escape attempt"
    elif isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
        return "loading another template"
    elif isinstance(node, nodes.Pow):
        return "the power operator (resource exhaustion)"
    elif isinstance(node, nodes.Mul):
        return _mul_reason(node)
    elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        if node.node.name == "range":
            return _range_reason(node)
    elif isinstance(node, nodes.For) and loop_depth > 0:
        return "nested loops (resource exhaustion)"
    return None


def _mul_reason(node: nodes.Mul) -> str | None:
    for side in (node.left, node.right):
        if isinstance(side, nodes.List | nodes.Tuple) or (
            isinstance(side, nodes.Const) and isinstance(side.value, str)
        ):
            return "repeating a string or list (resource exhaustion)"
        if (
            isinstance(side, nodes.Const)
            and isinstance(side.value, int | float)
            and abs(side.value) > _MAX_FACTOR
        ):
            return "multiplying by a large number (resource exhaustion)"
    return None


def _range_reason(node: nodes.Call) -> str | None:
    for arg in node.args:
        if not (isinstance(arg, nodes.Const) and isinstance(arg.value, int)):
            return "range() with a computed bound (resource exhaustion)"
        if abs(arg.value) > _MAX_RANGE:
            return f"range() over {_MAX_RANGE} items (resource exhaustion)"
    return None


def _walk(node: nodes.Node, depth: int = 0) -> Iterator[tuple[nodes.Node, int]]:
    yield node, depth
    inner = depth + 1 if isinstance(node, nodes.For) else depth
    for child in node.iter_child_nodes():
        yield from _walk(child, inner)


def screen_template(text: str) -> list[tuple[int, str]]:
    """(line within ``text``, reason) of every construct refused in a prompt."""
    try:
        ast = environment().parse(text)
    except TemplateSyntaxError:
        return []  # not a template that could run; a lint error elsewhere
    found: list[tuple[int, str]] = []
    for node, depth in _walk(ast):
        reason = _reason(node, depth)
        if reason:
            found.append((getattr(node, "lineno", 1) or 1, reason))
    return found


_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_RAW = re.compile(
    r"\.\s*_|\[\s*['\"]_|__|\|\s*attr\b|\b(?:cycler|joiner|namespace|lipsum)\b|\*\*|\b(?:include|import|extends)\b"
)


def screen_raw(source: str) -> list[tuple[int, str]]:
    """A textual pass over the whole source: catches escapes anywhere in the file,
    including YAML that does not parse (which the AST pass cannot see)."""
    found = []
    for tag in _TAG.finditer(source):
        hit = _RAW.search(tag.group(0))
        if hit:
            line = source.count("\n", 0, tag.start() + hit.start()) + 1
            found.append((line, f"template construct '{hit.group(0).strip()}' is not allowed"))
    return found


def _strings(
    data: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i))


def screen(source: str, file: str) -> list[Problem]:
    """Every refused construct of a document, one per line (the precise reason first)."""
    found: dict[int | None, Problem] = {}
    try:
        data, lines = load_yaml(source, file)
    except SourceFileError:
        data, lines = None, None
    if lines is not None:
        for path, text in _strings(data):
            if "{" not in text:
                continue
            for line_in_text, reason in screen_template(text):
                line = lines.text_line(path, line_in_text)
                found.setdefault(line, Problem(file, line, ".".join(map(str, path)), reason))
    for line, reason in screen_raw(source):
        found.setdefault(line, Problem(file, line, "", reason))
    return sorted(found.values(), key=lambda p: p.line or 0)


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


def prompts(script: Script) -> Iterator[tuple[str, str, Any, bool, int | None, str]]:
    """(node id, label, template, identity confirmed, file line, file) of every prompt."""
    before = pre_identity_nodes(script)
    for nid, node in script.nodes.items():
        for label, template, sub in (
            ("say", node.say, ("say",)),
            ("no_input", node.no_input, ("reprompt", "no_input")),
            ("no_match", node.no_match, ("reprompt", "no_match")),
        ):
            if template is not None:
                line = node.origin.text_line(sub, None)
                yield nid, label, template, nid not in before, line, node.origin.file


def render_prompt(template: Any, account: Account, bank_name: str, confirmed: bool) -> str:
    """One prompt in the sandbox; :class:`SecurityError` passes through as itself."""
    try:
        return render(
            template, template_variables(account, bank_name, identity_confirmed=confirmed)
        )
    except PromptError as exc:
        if isinstance(exc.__cause__, SecurityError):
            raise exc.__cause__ from None
        raise


def _render_all(settings: Settings, script: Script, report: Report) -> None:
    account = sample_account()
    for nid, label, template, confirmed, line, file in prompts(script):
        where = _relative(settings, SourceError(file, line, f"nodes.{nid}.{label}", ""))
        try:
            render_prompt(template, account, settings.bank_name, confirmed)
        except SecurityError as exc:
            report.refused.append(
                Problem(where.file, line, where.field, f"refused by the sandbox: {exc}")
            )
        except PromptError as exc:
            if not any(p.file == where.file and p.line == line for p in report.errors):
                report.errors.append(
                    Problem(where.file, line, where.field, f"cannot be rendered: {exc.message}")
                )


def check_script(settings: Settings, published: PublishedSet, doc: str, source: str) -> Report:
    file = document_file(Kind.SCRIPTS, doc)
    report = Report(file, refused=screen(source, file))
    if report.refused:
        return report  # never compile or render what tries to escape
    lib = library_with(settings, published, {doc: source})
    errors = lint_library(lib, settings.bank_name) + _router_errors(settings, lib)
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
    report = Report(file, refused=screen(source, file))
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
