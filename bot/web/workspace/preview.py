"""Every prompt of a version rendered for a sample account, masked for display: a
script's prompts, a block's prompts in the scripts that include it, a language pack's
fixed phrases; each with a link to the editor at the line it was written on.

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
from bot.core.script_model import LanguagePack
from bot.core.scripts import Script, parse_model
from bot.core.templating import PromptError
from bot.core.yamlsource import SourceFileError
from bot.settings import REPO_ROOT, Settings
from bot.templates_store import FOLDERS, PublishedSet
from bot.web.i18n import N_
from bot.web.workspace.checks import Draft, library_with
from bot.web.workspace.documents import Kind

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
    #: The document it was written in (relative to the templates tree) ...
    file: str
    text: str
    error: str
    #: ... and the editor opened at that line: the previewed version for the previewed
    #: document, the published version for another one (a block a script includes).
    edit_url: str = ""
    #: The script it was rendered in (a block's prompts are rendered in each user).
    script: str = ""


@dataclass(frozen=True)
class Preview:
    script: str
    account: AccountView
    prompts: list[RenderedPrompt]
    #: Why nothing could be rendered (the draft does not compile).
    problem: str


def edit_url(file: str, line: int | None, draft: Draft, number: int) -> str:
    """The editor of the document ``file`` (``blocks/x.yaml``) at ``line``; ``""`` for a
    file that is not a workspace document."""
    folder, _, name = file.partition("/")
    if folder not in FOLDERS or not name.endswith(".yaml") or "/" in name:
        return ""
    doc = name.removesuffix(".yaml")
    url = f"/workspace/{folder}/{doc}/edit"
    if folder == draft.kind.value and doc == draft.doc:
        url += f"?from={number}"
    return url + (f"#L{line}" if line else "")


def _script_prompts(
    settings: Settings, script: Script, account: Account, draft: Draft, number: int
) -> list[RenderedPrompt]:
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
            url = edit_url(rel, p.line, draft, number)
            out.append(
                RenderedPrompt(
                    p.node, topic, p.label, p.after_identity, p.line, rel, text, error, url,
                    script.id,
                )
            )  # fmt: skip
    return out


def _phrases(settings: Settings, draft: Draft, number: int) -> list[RenderedPrompt]:
    """A language pack's fixed phrases as a caller hears them."""
    file = f"languages/{draft.doc}.yaml"
    pack, lines = parse_model(draft.source, file, LanguagePack)
    hotline = settings.bank_hotline or pack.hotline_fallback.format(bank_name=settings.bank_name)
    phrases: list[tuple[str, tuple[str, ...], str]] = [
        (f"replies.{k}", ("replies", k), v) for k, v in pack.replies.model_dump().items() if v
    ]
    phrases.append(("repeat_prefix", ("repeat_prefix",), pack.repeat_prefix))
    phrases.append(("hotline_fallback", ("hotline_fallback",), pack.hotline_fallback))
    out = []
    for label, path, raw in phrases:
        text, error = "", ""
        try:
            text = mask_text(raw.format(bank_name=settings.bank_name, hotline=hotline))
        except (KeyError, IndexError, ValueError) as exc:
            error = f"cannot be said: {exc!r}"
        line = lines.line(path)
        url = edit_url(file, line, draft, number)
        out.append(RenderedPrompt(label, "phrase", label, False, line, file, text, error, url))
    return out


#: Why a preview shows nothing (English message ids: the page translates them, the API
#: answers them as they are).
_BROKEN = {
    Kind.SCRIPTS: N_("the script does not compile: fix its errors first"),
    Kind.BLOCKS: N_("the block does not compile: fix its errors first"),
    Kind.LANGUAGES: N_("the language does not compile: fix its errors first"),
}
NOT_INCLUDED = N_("no script that compiles includes this block")


def preview(
    settings: Settings, published: PublishedSet, draft: Draft, number: int, key: str
) -> Preview:
    """What ``draft`` (version ``number``) says to the account ``key``: a script's
    prompts; a block's prompts in every script that includes it; a language pack's
    fixed phrases."""
    accounts = sample_accounts()
    account = accounts.get(key)
    if account is None:
        raise KeyError(key)
    view = account_view(key, account)
    broken = _BROKEN[draft.kind]
    if draft.kind is Kind.LANGUAGES:
        try:
            return Preview(draft.doc, view, _phrases(settings, draft, number), "")
        except SourceFileError:
            return Preview(draft.doc, view, [], broken)
    lib = library_with(settings, published, draft)
    if draft.kind is Kind.SCRIPTS:
        script = lib.scripts.get(draft.doc)
        if script is None:
            return Preview(draft.doc, view, [], broken)
        return Preview(
            draft.doc, view, _script_prompts(settings, script, account, draft, number), ""
        )
    file = f"blocks/{draft.doc}.yaml"
    seen: set[tuple[str, str]] = set()
    out = []
    for script in lib.scripts.values():
        for p in _script_prompts(settings, script, account, draft, number):
            if p.file == file and (p.node, p.label) not in seen:
                seen.add((p.node, p.label))
                out.append(p)
    if not out:
        return Preview(draft.doc, view, [], NOT_INCLUDED)
    return Preview(draft.doc, view, out, "")
