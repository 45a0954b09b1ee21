"""``bot campaign``: load accounts into campaigns (and, later, run them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from bot.campaign.formats import FileFormat
from bot.cli.common import console, fail, settings

if TYPE_CHECKING:  # the database layer loads only when a command runs
    from sqlalchemy.engine import Engine

    from bot.campaign.importer import ImportReport, RowError

app = typer.Typer(
    help="Campaigns: import accounts, start, pause, resume, cancel, status, do-not-call.",
    no_args_is_help=True,
)

#: Rejected rows listed on screen; the rest are counted (``--rejects`` writes them all).
SHOWN_ERRORS = 20


def _summary(report: ImportReport) -> Table:
    table = Table(title=f"import into campaign '{report.campaign}'", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    rate = report.read / report.seconds if report.seconds else 0.0
    rows = [
        ("encoding", report.encoding),
        ("records read", report.read),
        ("loaded", report.loaded),
        ("  new accounts", report.inserted),
        ("  updated", report.updated),
        ("  unchanged", report.unchanged),
        ("rejected", report.rejected),
        ("work items created", report.items_created),
        ("on do-not-call list (not dialled)", report.dnc_skipped),
        ("time", f"{report.seconds:.2f} s ({rate:,.0f} records/s)"),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    return table


def _error_table(errors: list[RowError], rejects: Path | None) -> Table:
    shown = errors[:SHOWN_ERRORS]
    caption = None
    if len(errors) > len(shown):
        more = len(errors) - len(shown)
        caption = f"... and {more} more" + ("" if rejects else " (--rejects FILE lists them all)")
    table = Table(title="rejected rows", caption=caption)
    table.add_column("line", justify="right")
    table.add_column("field")
    table.add_column("reason")
    for e in shown:  # Text: a reason is data, never Rich markup
        table.add_row(str(e.line), Text(e.field), Text(e.reason))
    return table


def exit_code(report: ImportReport) -> int:
    """0 when something loaded or the file held no records, 1 when every record failed."""
    return 0 if report.loaded or not report.read else 1


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="Accounts file: .csv, .jsonl or .ndjson"),
    campaign: str = typer.Option(..., "--campaign", "-c", help="Campaign name (created if new)"),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Write rejected rows here (CSV: columns + line + error)"
    ),
    fmt: FileFormat | None = typer.Option(
        None, "--format", case_sensitive=False, help="File format (default: by extension)"
    ),
    encoding: str | None = typer.Option(
        None,
        "--encoding",
        help="File encoding, e.g. utf-8, gb18030 (default: detected for the whole file;"
        " lines that do not decode are rejected)",
    ),
) -> None:
    """Validate FILE and load its good rows into campaign NAME; re-importing is safe
    (accounts are upserted by account_id, work items are not duplicated).

    Exit code: 0 when at least one row loaded (or the file was empty), 1 when every row
    was rejected, 2 when nothing could be imported (unreadable file or header, cancelled
    campaign, database unreachable)."""
    import sqlalchemy as sa
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from bot.campaign.importer import ImportFailed, import_file
    from bot.store.db import make_engine
    from bot.store.migrate import upgrade

    url = settings().db_url
    try:
        upgrade(url)
    except sa.exc.OperationalError as exc:
        fail(f"cannot open the database: {str(exc.orig).splitlines()[0]}", code=2)
    engine = make_engine(url)
    columns = (
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("import", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = import_file(
                engine,
                file,
                campaign,
                fmt=fmt.value if fmt else None,
                encoding=encoding,
                rejects=rejects,
                progress=advance,
            )
    except ImportFailed as exc:
        fail(str(exc), code=2)
    finally:
        engine.dispose()
    console.print(_summary(report))
    if report.rejected:
        console.print(_error_table(report.errors, rejects))
    if rejects is not None and report.rejected:
        console.print(f"rejected rows written to {rejects}", highlight=False)
    raise typer.Exit(exit_code(report))


def _engine() -> Engine:
    from bot.store.db import make_engine
    from bot.store.migrate import upgrade

    url = settings().db_url
    upgrade(url)
    return make_engine(url)


def _transition(name: str, command: str) -> None:
    from bot.campaign.control import CampaignError, transition

    try:
        state = transition(_engine(), name, command)
    except CampaignError as exc:
        fail(str(exc), code=1)
    console.print(f"campaign '{name}' is {state}")


@app.command("start")
def start(name: str = typer.Argument(..., help="Campaign name")) -> None:
    """Start dialling a campaign (workers pick it up)."""
    _transition(name, "start")


@app.command("pause")
def pause(name: str = typer.Argument(...)) -> None:
    """Stop starting new calls; calls in progress finish."""
    _transition(name, "pause")


@app.command("resume")
def resume(name: str = typer.Argument(...)) -> None:
    """Resume a paused campaign."""
    _transition(name, "resume")


@app.command("cancel")
def cancel(name: str = typer.Argument(...)) -> None:
    """Cancel a campaign: queued accounts are not called."""
    _transition(name, "cancel")


def status_table(name: str, engine: Engine | None = None) -> Table:
    from bot.campaign.control import status as campaign_status

    st = campaign_status(engine or _engine(), name)
    table = Table(title=f"campaign '{st.name}': {st.state}", show_header=False)
    table.add_row("work items", ", ".join(f"{k} {v}" for k, v in sorted(st.items.items())) or "-")
    table.add_row("calls", str(st.calls))
    table.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(st.outcomes.items())) or "-")
    table.add_row(
        "dispositions", ", ".join(f"{k} {v}" for k, v in sorted(st.dispositions.items())) or "-"
    )
    table.add_row("connect rate", f"{st.connect_rate:.0%}" if st.connect_rate is not None else "-")
    table.add_row(
        "average call", f"{st.avg_duration_s:.0f} s" if st.avg_duration_s is not None else "-"
    )
    return table


@app.command("status")
def status(name: str = typer.Argument(...)) -> None:
    """Work items, outcomes, dispositions, connect rate and call length."""
    from bot.campaign.control import CampaignError

    try:
        console.print(status_table(name))
    except CampaignError as exc:
        fail(str(exc), code=1)


@app.command("dnc")
def dnc(
    phone: str = typer.Argument(..., help="Phone number (any format; CN by default)"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Add a number to the do-not-call list (queued calls to it are cancelled at dial time)."""
    from bot.campaign import dnc as dnc_list
    from bot.core.masking import mask_phone
    from bot.store.db import session_scope

    try:
        with session_scope(_engine()) as session:
            entry, _new = dnc_list.add(session, phone, reason)
            e164 = entry.phone_e164
    except dnc_list.NotAPhoneNumber as exc:
        fail(str(exc), code=1)
    console.print(f"{mask_phone(e164)} is on the do-not-call list")
