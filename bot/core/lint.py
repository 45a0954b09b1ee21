"""Static checks of compiled scripts, each problem with file, line and reason.

Checks: unknown variables, intents and nodes; unreachable nodes; nodes from which the
call can never end; a missing opening disclosure; any account detail that could be
spoken before the identity gate has succeeded; and every prompt rendered for a sample
account under the render limits (a prompt that cannot be rendered, or that the sandbox or
the limits refuse, is reported at its line).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from jinja2 import Template

from bot.core import render_budget
from bot.core.account import (
    ALL_VARIABLES,
    PROTECTED_VARIABLES,
    Account,
    sample_account,
    template_variables,
)
from bot.core.messages import N_, Message
from bot.core.script_model import ROUTABLE_INTENTS, LanguagePack
from bot.core.scripts import CompiledNode, Script, TemplateLibrary
from bot.core.templating import PromptError, render, variables_of
from bot.core.vocab import Intent
from bot.core.yamlsource import SourceError

_DTMF_KEYS = frozenset("0123456789*#")


def _err(
    script: Script,
    node: CompiledNode,
    sub: tuple[str | int, ...],
    message: Message,
    line: int | None = None,
) -> SourceError:
    """An error at ``node``; a node that comes from a block names the including script
    (one message around any other, so no message needs a second id with the script)."""
    field = ".".join(["nodes", node.id, *map(str, sub)])
    if node.origin.file != script.file:
        message = Message.of(IN_SCRIPT, problem=message, script=script.id)
    return SourceError.said(node.origin.file, line or node.origin.line(*sub), field, message)


#: What a block's problem says about the script that includes it.
IN_SCRIPT = N_("%(problem)s (in script %(script)s)")
_UNKNOWN_NODE = N_("unknown node '%(node)s'")
_UNKNOWN_VARIABLE = N_("unknown variable '%(variable)s'")


def _texts(node: CompiledNode) -> Iterator[tuple[tuple[str, ...], str]]:
    yield ("say",), node.spec.say
    for key in ("no_input", "no_match"):
        text = getattr(node.spec.reprompt, key)
        if text is not None:
            yield ("reprompt", key), text


def _node_variables(node: CompiledNode) -> set[str]:
    out = set(node.spec.requires)
    for _, text in _texts(node):
        out |= variables_of(text)
    return out


def reachable(script: Script, roots: Iterable[str], *, stop_at_identity: bool = False) -> set[str]:
    """Nodes reachable from ``roots``; with ``stop_at_identity`` the gate's affirm route
    (the only way to confirm identity) is not followed."""
    seen: set[str] = set()
    queue = deque(r for r in roots if r in script.nodes)
    while queue:
        nid = queue.popleft()
        if nid in seen:
            continue
        seen.add(nid)
        spec = script.nodes[nid].spec
        targets = spec.targets()
        if stop_at_identity and spec.gate == "identity":
            confirmed = spec.on.get(Intent.AFFIRM.value)
            targets = [t for t in targets if t != confirmed]
        queue.extend(t for t in targets if t in script.nodes and t not in seen)
    return seen


def pre_identity_nodes(script: Script) -> set[str]:
    """Nodes that can be spoken before the identity gate has succeeded (handlers too:
    a callee can be busy, refuse or turn out to be voicemail at the first question)."""
    return reachable(script, [script.start, *_handler_nodes(script)], stop_at_identity=True)


def _handler_nodes(script: Script) -> list[str]:
    h = script.handlers
    return [h.callback, h.refused, h.voicemail, h.budget, h.handoff]


def _check_references(script: Script) -> list[SourceError]:
    errors: list[SourceError] = []
    for node in script.nodes.values():
        spec = node.spec
        for intent, target in spec.on.items():
            if intent not in ROUTABLE_INTENTS:
                said = Message.of(N_("unknown intent '%(intent)s'"), intent=intent)
                errors.append(_err(script, node, ("on", intent), said))
            if target not in script.nodes:
                said = Message.of(_UNKNOWN_NODE, node=target)
                errors.append(_err(script, node, ("on", intent), said))
        for key in ("default", "next"):
            target = getattr(spec, key)
            if target is not None and target not in script.nodes:
                said = Message.of(_UNKNOWN_NODE, node=target)
                errors.append(_err(script, node, (key,), said))
        for i, f in enumerate(spec.followups):
            if f.ask not in script.nodes:
                said = Message.of(_UNKNOWN_NODE, node=f.ask)
                errors.append(_err(script, node, ("followups", i), said))
        for digit in spec.dtmf:
            if digit not in _DTMF_KEYS:
                said = Message.of(N_("'%(key)s' is not a keypad key"), key=digit)
                errors.append(_err(script, node, ("dtmf", digit), said))
        if spec.gate == "identity" and Intent.AFFIRM.value not in spec.on:
            said = Message(N_("the identity gate must route 'affirm'"))
            errors.append(_err(script, node, ("gate",), said))
    for name, target in [("start", script.start)] + [
        (f"handlers.{k}", v) for k, v in script.handlers.model_dump().items() if isinstance(v, str)
    ]:
        if target not in script.nodes:
            errors.append(SourceError.of(script.file, None, name, _UNKNOWN_NODE, node=target))
    return errors


def _check_variables(script: Script) -> list[SourceError]:
    errors = []
    for node in script.nodes.values():
        for sub, text in _texts(node):
            try:
                unknown = variables_of(text) - ALL_VARIABLES
            except PromptError as exc:
                errors.append(
                    _err(script, node, sub, exc.text, node.origin.text_line(sub, exc.line))
                )
                continue
            for var in sorted(unknown):
                errors.append(
                    _err(
                        script,
                        node,
                        sub,
                        Message.of(_UNKNOWN_VARIABLE, variable=var),
                        node.origin.text_line(sub, _line_of(text, var)),
                    )
                )
        for var in node.spec.requires:
            if var not in ALL_VARIABLES:
                said = Message.of(_UNKNOWN_VARIABLE, variable=var)
                errors.append(_err(script, node, ("requires",), said))
    return errors


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return 1


def _check_graph(script: Script) -> list[SourceError]:
    errors = []
    live = reachable(script, [script.start, *_handler_nodes(script)])
    for nid, node in script.nodes.items():
        if nid not in live:
            errors.append(_err(script, node, (), Message(N_("unreachable node"))))
    # Reverse reachability from the closing nodes: which nodes can still end the call?
    can_end = {nid for nid, n in script.nodes.items() if n.spec.end is not None}
    changed = True
    while changed:
        changed = False
        for nid, node in script.nodes.items():
            if nid not in can_end and any(t in can_end for t in node.spec.targets()):
                can_end.add(nid)
                changed = True
    for nid in sorted(live - can_end):
        said = Message(N_("no way to end the call from this node"))
        errors.append(_err(script, script.nodes[nid], (), said))
    return errors


def _check_identity(script: Script) -> list[SourceError]:
    gates = [n for n in script.nodes.values() if n.spec.gate == "identity"]
    if len(gates) != 1:
        return [
            SourceError.of(
                script.file,
                None,
                "nodes",
                N_("a script needs exactly one identity gate node, found %(n)s"),
                n=len(gates),
            )
        ]
    errors = []
    gate = gates[0].spec
    confirmed = gate.on.get(Intent.AFFIRM.value)
    for key, target in [*gate.on.items(), ("default", gate.default)]:
        if key != Intent.AFFIRM.value and target is not None and target == confirmed:
            sub: tuple[str, ...] = ("on", key) if key != "default" else ("default",)
            said = Message(N_("only 'affirm' may lead past the identity gate"))
            errors.append(_err(script, gates[0], sub, said))
    for nid in sorted(pre_identity_nodes(script)):
        node = script.nodes[nid]
        for sub, text in _texts(node):
            try:
                leaked = variables_of(text) & PROTECTED_VARIABLES
            except PromptError:
                continue  # reported by _check_variables
            for var in sorted(leaked):
                errors.append(
                    _err(
                        script,
                        node,
                        sub,
                        Message.of(
                            N_(
                                "account detail '%(variable)s' can be spoken before identity is confirmed"
                            ),
                            variable=var,
                        ),
                        node.origin.text_line(sub, _line_of(text, var)),
                    )
                )
    return errors


def opening_text(script: Script, bank_name: str) -> str:
    """What the callee hears first: the start node and the statements chained after it,
    up to and including the first question."""
    ctx: dict[str, object] = template_variables(
        sample_account(), bank_name, identity_confirmed=False
    )
    parts = []
    nid: str | None = script.start
    seen: set[str] = set()
    while nid is not None and nid in script.nodes and nid not in seen:
        seen.add(nid)
        node = script.nodes[nid]
        parts.append(render(node.say, ctx))
        nid = node.spec.next
    return "".join(parts)


def _check_disclosure(
    script: Script, pack: LanguagePack | None, bank_name: str
) -> list[SourceError]:
    start = script.nodes.get(script.start)
    if start is None:
        return []
    if pack is None:
        return [
            SourceError.of(
                script.file,
                None,
                "language",
                N_("no language pack for '%(language)s'"),
                language=script.language,
            )
        ]
    try:
        text = opening_text(script, bank_name)
    except PromptError as exc:
        return [
            _err(
                script,
                start,
                ("say",),
                Message.of(
                    N_("opening cannot be rendered before identity: %(reason)s"), reason=exc.text
                ),
            )
        ]
    missing = [group for group in pack.disclosure if not any(p in text for p in group)]
    said = N_("opening disclosure missing: say one of %(phrases)s")
    return [
        _err(script, start, ("say",), Message.of(said, phrases=" / ".join(group)))
        for group in missing
    ]


@dataclass(frozen=True)
class Prompt:
    """One prompt of a script: where it is and whether it is spoken after identity."""

    node: str
    label: str  # say / no_input / no_match
    template: Template
    after_identity: bool
    line: int | None  # the file line its text starts on
    file: str
    sub: tuple[str, ...]

    @property
    def field(self) -> str:
        return f"nodes.{self.node}.{self.label}"


def prompts(script: Script) -> Iterator[Prompt]:
    """Every prompt of ``script``, in node order."""
    before = pre_identity_nodes(script)
    for nid, node in script.nodes.items():
        for label, template, sub in (
            ("say", node.say, ("say",)),
            ("no_input", node.no_input, ("reprompt", "no_input")),
            ("no_match", node.no_match, ("reprompt", "no_match")),
        ):
            if template is not None:
                line = node.origin.text_line(sub, None)
                yield Prompt(nid, label, template, nid not in before, line, node.origin.file, sub)


def render_prompt(prompt: Prompt, account: Account, bank_name: str) -> str:
    """``prompt`` as ``account`` would hear it (raises :class:`PromptError`)."""
    ctx = template_variables(account, bank_name, identity_confirmed=prompt.after_identity)
    return render(prompt.template, ctx)


_CANNOT_RENDER = N_("cannot be rendered: %(reason)s")


@dataclass(frozen=True)
class RenderProblem:
    error: SourceError
    #: Stopped by the sandbox or the render limits, not merely wrong.
    refused: bool


def render_problems(
    script: Script, bank_name: str, account: Account | None = None
) -> list[RenderProblem]:
    """Every prompt rendered for ``account`` (the sample one by default), all within one
    document budget; one problem per prompt that fails, at the line that failed."""
    account = account or sample_account()
    found = []
    with render_budget.session():
        for p in prompts(script):
            try:
                render_prompt(p, account, bank_name)
            except PromptError as exc:
                node = script.nodes[p.node]
                line = node.origin.text_line(p.sub, exc.line) if exc.line else p.line
                what = N_("refused: %(reason)s") if exc.refused else _CANNOT_RENDER
                error = _err(script, node, p.sub, Message.of(what, reason=exc.text), line)
                found.append(RenderProblem(error, exc.refused))
    return found


def lint_script(
    script: Script, pack: LanguagePack | None, bank_name: str = "示例银行"
) -> list[SourceError]:
    errors = _check_references(script) + _check_variables(script)
    if errors:  # graph checks on a broken graph only repeat the same problems
        return errors
    return (
        _check_graph(script) + _check_identity(script) + _check_disclosure(script, pack, bank_name)
    )


def lint_library(
    lib: TemplateLibrary, bank_name: str = "示例银行", *, renders: bool = True
) -> list[SourceError]:
    """Load errors plus every script's lint errors, sorted by file and line; with
    ``renders``, also every prompt that fails to render (:func:`render_problems`)."""
    errors = list(lib.errors)
    for script in lib.scripts.values():
        with render_budget.session():  # one script's budget, not shared with the others
            found = lint_script(script, lib.languages.get(script.language), bank_name)
            if renders and not found:
                found = [p.error for p in render_problems(script, bank_name)]
        errors += found
    return sorted(set(errors), key=lambda e: (e.file, e.line or 0, e.field))
