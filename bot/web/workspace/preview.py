"""Every prompt of a script version rendered for a sample account, masked for display.

The accounts offered are the built-in sample and the public personas' accounts (made-up
people, but shown masked like any account). Rendering happens in the same sandbox as in
a call, with protected variables present only after the identity gate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.core import render_budget
from bot.core.account import Account, sample_account
from bot.core.lint import prompts, render_prompt
from bot.core.masking import mask_phone, mask_text
from bot.core.templating import PromptError
from bot.settings import REPO_ROOT, Settings
from bot.templates_store import PublishedSet
from bot.web.workspace.checks import library_with

SAMPLE = "sample"


def shared_dir() -> Path:
    """``../shared`` beside the repository, or ``BOT_SHARED_DIR``."""
    return Path(os.environ.get("BOT_SHARED_DIR", REPO_ROOT.parent / "shared"))


def public_personas_dir() -> Path:
    return shared_dir() / "personas"


def sample_accounts() -> dict[str, Account]:
    """``sample`` and every public persona's account, by persona id."""
    from bot.sim.personas import load_dir

    accounts = {SAMPLE: sample_account()}
    folder = public_personas_dir()
    if folder.is_dir():
        personas, _errors = load_dir(folder)
        accounts |= {p.id: p.account for p in personas}
    return accounts


@dataclass(frozen=True)
class AccountView:
    key: str
    name: str
    account_id: str
    phone: str
    scenario: str
    model_score: float


def account_view(key: str, account: Account) -> AccountView:
    return AccountView(
        key,
        account.name,
        mask_text(account.account_id),
        mask_phone(account.phone),
        account.scenario.value,
        account.model_score,
    )


@dataclass(frozen=True)
class RenderedPrompt:
    node: str
    topic: str
    label: str
    #: Spoken after the identity gate (protected variables available).
    after_identity: bool
    line: int | None
    file: str
    text: str
    error: str


@dataclass(frozen=True)
class Preview:
    script: str
    account: AccountView
    prompts: list[RenderedPrompt]
    #: Why nothing could be rendered (the draft does not compile).
    problem: str


def preview(
    settings: Settings, published: PublishedSet, doc: str, source: str, key: str
) -> Preview:
    accounts = sample_accounts()
    account = accounts.get(key)
    if account is None:
        raise KeyError(key)
    view = account_view(key, account)
    lib = library_with(settings, published, {doc: source})
    script = lib.scripts.get(doc)
    if script is None:
        return Preview(doc, view, [], "the script does not compile: fix its errors first")
    out = []
    root = settings.templates_dir
    with render_budget.session():
        for p in prompts(script):
            text, error = "", ""
            try:
                text = mask_text(render_prompt(p, account, settings.bank_name))
            except PromptError as exc:
                error = exc.message
            file = p.file
            rel = str(Path(file).relative_to(root)) if Path(file).is_relative_to(root) else file
            topic = script.nodes[p.node].spec.topic
            out.append(
                RenderedPrompt(p.node, topic, p.label, p.after_identity, p.line, rel, text, error)
            )
    return Preview(doc, view, out, "")
