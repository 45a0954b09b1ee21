"""``bot config``: check the configuration, print the example file; and the check that
``bot worker``, ``bot web`` and ``bot demo`` run before they load anything heavy."""

from __future__ import annotations

import json
from enum import StrEnum

import typer
from rich.markup import escape
from rich.table import Table

from bot.cli.common import console, err_console
from bot.config_check import (
    EVERYTHING,
    WEB,
    Finding,
    Needs,
    for_demo,
    for_worker,
    load_and_check,
    problems,
)
from bot.gateways import GatewayName
from bot.settings import Settings, get_settings

app = typer.Typer(help="Check the configuration; print the example config file.")


class Target(StrEnum):
    everything = "all"
    web = "web"
    worker = "worker"
    demo = "demo"


def _needs(target: Target, gateway: str | None) -> Needs:
    if target is Target.web:
        return WEB
    if target is Target.worker:
        return for_worker(gateway or "simulated")
    if target is Target.demo:
        return for_demo(gateway or "loopback")
    return EVERYTHING if gateway is None else Needs(gateway=gateway)


@app.command("check")
def check_command(
    target: Target = typer.Option(
        Target.everything, "--for", help="Check only what this command needs"
    ),
    gateway: GatewayName | None = typer.Option(
        None,
        "--gateway",
        case_sensitive=False,
        help="The gateway the command dials through (default: its default)",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Check every setting the command needs (database reachable, delivery, Whisper
    model, TTS, gateway credentials, PII keys). Exit 1 if anything is a problem;
    warnings alone exit 0. Loads no model."""
    _, found = load_and_check(_needs(target, gateway), factory=get_settings)
    failed = bool(problems(found))
    if as_json:
        out = {
            "ok": not failed,
            "problems": [f.as_dict() for f in found if f.severity == "problem"],
            "warnings": [f.as_dict() for f in found if f.severity == "warning"],
        }
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        _print_table(found)
    if failed:
        raise typer.Exit(1)


def _print_table(found: list[Finding]) -> None:
    if not found:
        console.print("[green]configuration OK[/]")
        return
    table = Table("")
    # folded, never cut short: names, paths and commands are what the reader copies
    for name in ("setting", "what is wrong", "how to fix it"):
        table.add_column(name, overflow="fold")
    for f in found:
        mark = "[bold red]problem[/]" if f.severity == "problem" else "[yellow]warning[/]"
        table.add_row(mark, escape(f.setting), escape(f.message), escape(f.fix))
    console.print(table)
    n_problems = len(problems(found))
    n_warnings = len(found) - n_problems
    console.print(f"{n_problems} problem(s), {n_warnings} warning(s)")


@app.command("example")
def example_command() -> None:
    """Print the example config file: every setting with its default, generated from
    the settings object (config.example.toml is this output; load a copy with
    BOT_CONFIG_FILE=config.toml)."""
    from bot.config_example import render

    typer.echo(render(), nl=False)


def preflight(needs: Needs) -> Settings:
    """The process settings, checked for what the command needs: warnings printed, and
    on any problem one line each and exit 1, before the command loads anything heavy."""
    settings, found = load_and_check(needs, factory=get_settings)
    for f in found:
        label = "[bold red]error:[/]" if f.severity == "problem" else "[yellow]warning:[/]"
        err_console.print(f"{label} {escape(f.line())}", highlight=False)
    if settings is None or problems(found):
        err_console.print("configuration check failed (bot config check --help)", highlight=False)
        raise typer.Exit(1)
    return settings


__all__ = ["app", "preflight"]
