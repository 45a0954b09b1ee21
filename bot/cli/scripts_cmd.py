"""``bot scripts``: lint, list and render the compliance-owned script templates."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

from bot.cli.common import console, fail, print_source_errors, settings
from bot.core.account import Account, template_variables
from bot.core.lint import lint_library, pre_identity_nodes
from bot.core.routing import load_router
from bot.core.scripts import load_library
from bot.core.template_screen import screen
from bot.core.templating import PromptError, render
from bot.core.yamlsource import SourceError, SourceFileError

app = typer.Typer(help="Lint, list and render script templates.", no_args_is_help=True)

TemplatesOpt = typer.Option(None, "--templates", help="Templates directory (default: settings)")


def _screen_files(root: Path) -> list[SourceError]:
    """The sandbox screen over every template source file, as the workspace runs it."""
    found = []
    for folder in ("scripts", "blocks", "languages"):
        for path in sorted((root / folder).glob("*.yaml")):
            found += screen(path.read_text(encoding="utf-8"), str(path))
    return found


@app.command("lint")
def lint(templates: Path | None = TemplatesOpt) -> None:
    """Check every script, block, language pack and the routing table.

    Runs the sandbox screen first, then lints the library and renders every prompt for a
    sample account under the render limits. Prints one line per problem
    (file:line: field: reason); exits 1 if there is any.
    """
    s = settings()
    root = templates or s.templates_dir
    refused = _screen_files(root)
    if refused:  # never compile or render what tries to escape the sandbox
        print_source_errors(refused)
        console.print(f"[red]{len(refused)} template construct(s) refused[/] in {root}")
        raise typer.Exit(1)
    lib = load_library(root)
    errors = lint_library(lib, s.bank_name)
    try:
        router, lines = load_router(root, s.tiers.medium, s.tiers.high)
        errors += router.check(
            {x.id: (set(x.scenarios), set(x.tiers)) for x in lib.scripts.values()}, lines
        )
    except SourceFileError as exc:
        errors += exc.errors
    except FileNotFoundError as exc:
        fail(f"{root}: no routing.yaml ({exc})")
    if errors:
        print_source_errors(errors)
        console.print(f"[red]{len(errors)} problem(s)[/] in {root}")
        raise typer.Exit(1)
    console.print(f"[green]ok[/]: {len(lib.scripts)} scripts, routing complete ({root})")


@app.command("list")
def list_scripts(templates: Path | None = TemplatesOpt) -> None:
    """List the scripts with their scenarios, tiers and version."""
    lib = load_library(templates or settings().templates_dir)
    table = Table("id", "version", "scenarios", "tiers", "nodes", "title")
    for sc in sorted(lib.scripts.values(), key=lambda x: x.id):
        table.add_row(
            sc.id,
            str(sc.version),
            ",".join(sc.scenarios),
            ",".join(sc.tiers),
            str(len(sc.nodes)),
            sc.title,
        )
    console.print(table)
    if lib.errors:
        print_source_errors(lib.errors)


def _account(arg: str) -> Account:
    text = Path(arg[1:]).read_text(encoding="utf-8") if arg.startswith("@") else arg
    try:
        return Account.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        fail(f"--account: not JSON ({exc})")
    except ValidationError as exc:
        fail(f"--account: {exc}")


@app.command("render")
def render_cmd(
    script_id: str = typer.Argument(..., metavar="SCRIPT"),
    account: str = typer.Option(..., "--account", help="Account as JSON, or @file.json"),
    templates: Path | None = TemplatesOpt,
) -> None:
    """Print every prompt of SCRIPT as it would be spoken to ACCOUNT."""
    s = settings()
    lib = load_library(templates or s.templates_dir)
    if script_id not in lib.scripts:
        print_source_errors(lib.errors)
        fail(f"unknown script '{script_id}' (known: {', '.join(sorted(lib.scripts))})")
    acct = _account(account)
    script = lib.scripts[script_id]
    before = pre_identity_nodes(script)
    console.print(f"# {script.ref} {script.title}", markup=False)
    for nid, node in script.nodes.items():
        ctx = template_variables(acct, s.bank_name, identity_confirmed=nid not in before)
        console.print(f"{nid} [{node.spec.topic}]", markup=False, style="bold")
        for label, template in (
            ("say", node.say),
            ("no_input", node.no_input),
            ("no_match", node.no_match),
        ):
            if template is None:
                continue
            try:
                console.print(f"  {label}: {render(template, ctx)}", markup=False, highlight=False)
            except PromptError as exc:
                console.print(f"  {label}: ERROR {exc.message}", markup=False, style="red")
