"""Shared CLI plumbing: console, settings, error exits."""

from __future__ import annotations

import logging
from typing import NoReturn

import typer
from rich.console import Console

from bot.core.masking import PiiMaskingFilter
from bot.core.yamlsource import SourceError
from bot.settings import Settings, get_settings

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    return get_settings()


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(PiiMaskingFilter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def print_source_errors(errors: list[SourceError]) -> None:
    for e in errors:
        err_console.print(str(e), highlight=False, markup=False)
