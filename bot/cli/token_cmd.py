"""``bot users token``: API tokens for machines (create, list, revoke); docs/api.md."""

from __future__ import annotations

import datetime as dt

import typer
from rich.markup import escape

from bot.cli.common import console, err_console, fail

app = typer.Typer(
    help="API tokens for machines: create (shown once), list, revoke.", no_args_is_help=True
)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="What the token is for, e.g. crm-sync"),
    role: str = typer.Option(..., "--role", help="reviewer | compliance | supervisor | admin"),
    days: int | None = typer.Option(
        None, "--expires-days", min=1, max=3650, help="Refused after this many days"
    ),
) -> None:
    """Create a token with ROLE's permissions (less what needs a person: verdicts,
    script approval, revealing numbers). The secret is printed once, on stdout alone
    (TOKEN=$(bot users token create ...)); only its hash is kept."""
    from sqlmodel import Session

    from bot.cli.web_cmd import engine
    from bot.store.models import utcnow
    from bot.web.audit import audit
    from bot.web.tokens import TokenError, create_token

    now = utcnow()
    expires = now + dt.timedelta(days=days) if days else None
    with Session(engine(), expire_on_commit=False) as session:
        try:
            issued = create_token(session, name, role, "cli", now, expires)
        except TokenError as exc:
            fail(escape(str(exc)))
        row = issued.row
        audit(
            session, "cli", "token_created", "api_token", row.id or "",
            name=row.name, role=row.role, prefix=row.prefix,
        )  # fmt: skip
        session.commit()
    until = f", expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
    err_console.print(  # the note on stderr, the secret alone on stdout
        f"token [bold]{escape(row.name)}[/] ({row.role}{until}) created; "
        "it is shown once, store it now:"
    )
    typer.echo(issued.secret)


@app.command("list")
def list_tokens() -> None:
    """Every token: role, state, who made it, last use (never the secret)."""
    from rich.table import Table
    from sqlmodel import Session

    from bot.cli.web_cmd import engine
    from bot.store.models import utcnow
    from bot.web.tokens import list_tokens as all_tokens
    from bot.web.tokens import state

    def when(value: dt.datetime | None) -> str:
        return value.isoformat(timespec="minutes") if value else "-"

    now = utcnow()
    table = Table("id", "name", "role", "state", "prefix", "created", "by", "last used", "expires")
    with Session(engine(), expire_on_commit=False) as session:
        for t in all_tokens(session):
            table.add_row(
                str(t.id), escape(t.name), t.role, state(t, now), t.prefix + "...",
                when(t.created_at), escape(t.created_by), when(t.last_used_at),
                when(t.expires_at),
            )  # fmt: skip
    console.print(table)


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The live token's name, or its id")) -> None:
    """Revoke a token: from now on it is refused (401)."""
    from sqlmodel import Session

    from bot.cli.web_cmd import engine
    from bot.store.models import utcnow
    from bot.web.audit import audit
    from bot.web.tokens import TokenError, find_live
    from bot.web.tokens import revoke as revoke_token

    now = utcnow()
    with Session(engine(), expire_on_commit=False) as session:
        try:
            row = revoke_token(session, find_live(session, name, now), now)
        except TokenError as exc:
            fail(escape(str(exc)))
        audit(session, "cli", "token_revoked", "api_token", row.id or "", name=row.name)
        session.commit()
    console.print(f"token [bold]{escape(row.name)}[/] (id {row.id}) revoked")
