"""Every built-in prompt text of a template library, rendered for one account: what to
prerender into the prompt cache at start-up, and what the TTS benchmark speaks."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.account import Account, template_variables
from bot.core.scripts import TemplateLibrary
from bot.core.templating import PromptError, compile_prompt, render


@dataclass(frozen=True)
class PromptText:
    #: ``script/node/field`` of the first place the text occurs.
    where: str
    text: str


def library_prompts(lib: TemplateLibrary, account: Account, bank_name: str) -> list[PromptText]:
    """Distinct rendered texts of every node's ``say`` and reprompts in every script, plus
    the language packs' fixed phrases, in library order. Nodes that cannot be rendered
    for ``account`` are skipped (lint reports them)."""
    ctx: dict[str, object] = template_variables(account, bank_name, identity_confirmed=True)
    seen: dict[str, PromptText] = {}
    for script in lib.scripts.values():
        for node in script.nodes.values():
            sources = [("say", node.spec.say)]
            for key in ("no_input", "no_match"):
                text = getattr(node.spec.reprompt, key)
                if text is not None:
                    sources.append((key, text))
            for field, source in sources:
                try:
                    rendered = render(compile_prompt(source), ctx)
                except PromptError:
                    continue
                if rendered and rendered not in seen:
                    seen[rendered] = PromptText(f"{script.id}/{node.id}/{field}", rendered)
    for code, pack in lib.languages.items():
        if pack.repeat_prefix and pack.repeat_prefix not in seen:
            seen[pack.repeat_prefix] = PromptText(
                f"language/{code}/repeat_prefix", pack.repeat_prefix
            )
    return list(seen.values())
