"""Loading script templates: blocks are expanded, prompts compiled, errors located.

A templates directory holds::

    scripts/*.yaml      one script each (see :class:`~bot.core.script_model.ScriptFile`)
    blocks/*.yaml       reusable node groups (see :class:`~bot.core.script_model.BlockFile`)
    languages/*.yaml    language packs (disclosure phrases, keypad defaults...)
    routing.yaml        scenario x prior tier -> script

Loading never stops at the first problem: every file is read, each problem becomes a
:class:`~bot.core.yamlsource.SourceError` with file and line, and the scripts that are
sound stay usable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from jinja2 import Template
from pydantic import BaseModel, ValidationError

from bot.core.messages import N_
from bot.core.script_model import BlockFile, Handlers, LanguagePack, Node, ScriptFile
from bot.core.templating import PromptError, compile_prompt
from bot.core.vocab import RiskBand, Scenario
from bot.core.yamlsource import (
    LineMap,
    SourceError,
    SourceFileError,
    load_yaml,
    pydantic_errors,
)

M = TypeVar("M", bound=BaseModel)
#: Two block files with one id (the library's loader and the workspace's say the same).
DUPLICATE_BLOCK = N_("duplicate block id '%(block)s'")


@dataclass(frozen=True)
class Origin:
    """Where a node was written: its file, the YAML path of the node, and the line map."""

    file: str
    path: tuple[str | int, ...]
    lines: LineMap = field(compare=False, repr=False)

    def line(self, *sub: str | int) -> int | None:
        return self.lines.line((*self.path, *sub))

    def text_line(self, sub: tuple[str | int, ...], line_in_text: int | None) -> int | None:
        return self.lines.text_line((*self.path, *sub), line_in_text)


@dataclass(frozen=True)
class CompiledNode:
    id: str
    spec: Node
    origin: Origin
    say: Template
    no_input: Template | None
    no_match: Template | None


@dataclass(frozen=True)
class Script:
    id: str
    version: int
    language: str
    title: str
    scenarios: tuple[Scenario, ...]
    tiers: tuple[RiskBand, ...]
    start: str
    handlers: Handlers
    nodes: dict[str, CompiledNode]
    file: str
    #: sha256 over the script and the blocks it includes: identifies what drove a call.
    digest: str

    @property
    def ref(self) -> str:
        return f"{self.id}@v{self.version}"


def _parse(text: str, file: str, model: type[M]) -> tuple[M, LineMap]:
    data, lines = load_yaml(text, file)
    if not isinstance(data, dict):
        raise SourceFileError(
            [SourceError.of(file, 1, "", N_("expected a mapping at the top level"))]
        )
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        raise SourceFileError(pydantic_errors(exc, file, lines)) from exc


@dataclass(frozen=True)
class _Block:
    spec: BlockFile
    lines: LineMap
    file: str
    text: str


def _substitute(target: str, params: dict[str, str]) -> str:
    return params.get(target[1:], target) if target.startswith("$") else target


def _bind(node: Node, params: dict[str, str]) -> Node:
    """A copy of a block's node with ``$param`` targets replaced."""
    return node.model_copy(
        update={
            "on": {k: _substitute(v, params) for k, v in node.on.items()},
            "default": _substitute(node.default, params) if node.default else None,
            "next": _substitute(node.next, params) if node.next else None,
            "followups": [
                f.model_copy(update={"ask": _substitute(f.ask, params)}) for f in node.followups
            ],
        }
    )


def _compile_node(
    node_id: str, node: Node, origin: Origin
) -> tuple[CompiledNode | None, list[SourceError]]:
    errors: list[SourceError] = []
    compiled: dict[str, Template | None] = {}
    for key, source in (
        ("say", node.say),
        ("no_input", node.reprompt.no_input),
        ("no_match", node.reprompt.no_match),
    ):
        if source is None:
            compiled[key] = None
            continue
        sub: tuple[str | int, ...] = (key,) if key == "say" else ("reprompt", key)
        try:
            compiled[key] = compile_prompt(source)
        except PromptError as exc:
            line = origin.text_line(sub, exc.line)
            field = f"nodes.{node_id}.{'.'.join(map(str, sub))}"
            errors.append(SourceError.said(origin.file, line, field, exc.text))
    if errors:
        return None, errors
    say = compiled["say"]
    assert say is not None
    return CompiledNode(node_id, node, origin, say, compiled["no_input"], compiled["no_match"]), []


def build_script(
    text: str, file: str, blocks: dict[str, _Block]
) -> tuple[Script | None, list[SourceError]]:
    """Validate one script, expand its blocks and compile its prompts."""
    try:
        spec, lines = _parse(text, file, ScriptFile)
    except SourceFileError as exc:
        return None, exc.errors
    errors: list[SourceError] = []
    nodes: dict[str, tuple[Node, Origin]] = {
        nid: (node, Origin(file, ("nodes", nid), lines)) for nid, node in spec.nodes.items()
    }
    hasher = hashlib.sha256(text.encode())
    for i, inc in enumerate(spec.include):
        block = blocks.get(inc.block)
        if block is None:
            errors.append(
                SourceError.of(
                    file,
                    lines.line(("include", i)),
                    f"include[{i}]",
                    N_("unknown block '%(block)s'"),
                    block=inc.block,
                )
            )
            continue
        hasher.update(block.text.encode())
        missing = set(block.spec.params) - set(inc.with_)
        extra = set(inc.with_) - set(block.spec.params)
        for name in sorted(missing):
            errors.append(
                SourceError.of(
                    file,
                    lines.line(("include", i)),
                    f"include[{i}].with",
                    N_("block '%(block)s' needs parameter '%(param)s'"),
                    block=inc.block,
                    param=name,
                )
            )
        for name in sorted(extra):
            errors.append(
                SourceError.of(
                    file,
                    lines.line(("include", i)),
                    f"include[{i}].with",
                    N_("block '%(block)s' has no parameter '%(param)s'"),
                    block=inc.block,
                    param=name,
                )
            )
        for nid, node in block.spec.nodes.items():
            if nid in nodes:
                errors.append(
                    SourceError.of(
                        file,
                        lines.line(("include", i)),
                        f"include[{i}]",
                        N_(
                            "node '%(node)s' of block '%(block)s' clashes with a node already defined"
                        ),
                        node=nid,
                        block=inc.block,
                    )
                )
                continue
            nodes[nid] = (_bind(node, inc.with_), Origin(block.file, ("nodes", nid), block.lines))
    compiled: dict[str, CompiledNode] = {}
    for nid, (node, origin) in nodes.items():
        cnode, errs = _compile_node(nid, node, origin)
        errors += errs
        if cnode is not None:
            compiled[nid] = cnode
    if errors:
        return None, errors
    script = Script(
        id=spec.id,
        version=spec.version,
        language=spec.language,
        title=spec.title,
        scenarios=tuple(spec.scenarios),
        tiers=tuple(spec.tiers),
        start=spec.start,
        handlers=spec.handlers,
        nodes=compiled,
        file=file,
        digest=hasher.hexdigest(),
    )
    return script, []


@dataclass
class TemplateLibrary:
    """Everything in one templates directory, loaded and compiled."""

    root: Path
    scripts: dict[str, Script] = field(default_factory=dict)
    languages: dict[str, LanguagePack] = field(default_factory=dict)
    errors: list[SourceError] = field(default_factory=list)
    #: Raw script sources by id, kept for lint (line lookups) and the web editor.
    sources: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, _Block] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, root: Path) -> TemplateLibrary:
        lib = cls(root=root)
        blocks = lib._load_blocks()
        for path in sorted((root / "languages").glob("*.yaml")):
            try:
                pack, _ = _parse(path.read_text(encoding="utf-8"), str(path), LanguagePack)
                lib.languages[pack.language] = pack
            except SourceFileError as exc:
                lib.errors += exc.errors
        for path in sorted((root / "scripts").glob("*.yaml")):
            lib.add_script_source(path.read_text(encoding="utf-8"), str(path), blocks)
        return lib

    def _load_blocks(self) -> dict[str, _Block]:
        blocks: dict[str, _Block] = {}
        for path in sorted((self.root / "blocks").glob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            try:
                spec, lines = _parse(text, str(path), BlockFile)
            except SourceFileError as exc:
                self.errors += exc.errors
                continue
            if spec.id in blocks:
                self.errors.append(
                    SourceError.of(
                        str(path), lines.line(("id",)), "id", DUPLICATE_BLOCK, block=spec.id
                    )
                )
                continue
            blocks[spec.id] = _Block(spec, lines, str(path), text)
        self.blocks = blocks
        return blocks

    def add_script_source(
        self, text: str, file: str, blocks: dict[str, _Block] | None = None
    ) -> Script | None:
        """Compile one script source (from disk or from the web editor) into the library."""
        script, errors = build_script(text, file, blocks if blocks is not None else self.blocks)
        self.errors += errors
        if script is None:
            return None
        if script.id in self.scripts:
            self.errors.append(
                SourceError.of(
                    file, 1, "id", N_("duplicate script id '%(script)s'"), script=script.id
                )
            )
            return None
        self.scripts[script.id] = script
        self.sources[script.id] = text
        return script

    def language(self, code: str) -> LanguagePack:
        try:
            return self.languages[code]
        except KeyError:
            raise KeyError(f"no language pack for '{code}' in {self.root / 'languages'}") from None


def load_library(root: Path) -> TemplateLibrary:
    return TemplateLibrary.load(root)


def parse_model(text: str, file: str, model: type[M]) -> tuple[M, LineMap]:
    """Public wrapper of the validated YAML parse, for other YAML-backed files."""
    return _parse(text, file, model)


__all__ = [
    "CompiledNode",
    "Origin",
    "Script",
    "TemplateLibrary",
    "build_script",
    "load_library",
    "parse_model",
]
