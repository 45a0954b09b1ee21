"""``bot users`` (dashboard accounts) and ``bot web`` (serve the dashboard)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from bot.cli import token_cmd
from bot.cli.common import console, fail, settings
from bot.web.config import LOOPBACK_HOSTS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

app = typer.Typer(
    help="Dashboard users: add, list, disable, unlock; API tokens.", no_args_is_help=True
)
app.add_typer(token_cmd.app, name="token")


def engine() -> Engine:
    """The configured database, migrated."""
    from bot.store.db import make_engine
    from bot.store.migrate import upgrade

    s = settings()
    upgrade(s.db_url)
    return make_engine(s.db_url)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="User name"),
    role: str = typer.Option(..., "--role", help="reviewer | compliance | supervisor | admin"),
) -> None:
    """Create a user; the password is read from stdin (one line), never from the command
    line, so it does not end up in shell history or the process list. The name is stored
    normalised (case, width and spacing folded: ADM1 is adm1); the password must
    pass the policy (docs/dashboard.md)."""
    from sqlmodel import Session

    from bot.web.audit import audit
    from bot.web.roles import Role
    from bot.web.security import create_user

    if role not in {r.value for r in Role}:
        fail(f"--role must be one of {', '.join(r.value for r in Role)}")
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    with Session(engine()) as session:
        try:
            user = create_user(session, name, password, role)
        except ValueError as exc:
            fail(escape(str(exc)))
        stored = user.username
        audit(session, "cli", "user_created", "user", user.id or "", username=stored, role=role)
        session.commit()
    note = "" if stored == name else f" (stored as '{stored}')"
    console.print(f"user [bold]{escape(stored)}[/] ({role}) created{escape(note)}")


@app.command("list")
def list_users() -> None:
    """Every user with role, state and lock-out."""
    from rich.table import Table
    from sqlmodel import Session, select

    from bot.store.models import UserRow

    table = Table("user", "role", "state", "failed logins", "locked until")
    with Session(engine()) as session:
        for u in session.exec(select(UserRow).order_by(UserRow.username)).all():
            table.add_row(
                escape(u.username),
                u.role,
                "disabled" if u.disabled else "active",
                str(u.failed_logins),
                u.locked_until.isoformat(timespec="minutes") if u.locked_until else "-",
            )
    console.print(table)


def _update(name: str, action: str, **values: object) -> None:
    from sqlmodel import Session

    from bot.web.audit import audit
    from bot.web.user_admin import update_user
    from bot.web.usernames import find_user

    with Session(engine()) as session:
        user = find_user(session, name)
        if user is None:
            fail(f"no user '{name}'")
        update_user(session, user, **values)
        audit(session, "cli", action, "user", user.id or "", username=user.username)
        session.commit()
        console.print(f"user [bold]{escape(user.username)}[/]: {action.replace('user_', '')}")


@app.command("disable")
def disable(name: str = typer.Argument(...)) -> None:
    """Disable a user and end their sessions."""
    _update(name, "user_disabled", disabled=True)


@app.command("unlock")
def unlock(name: str = typer.Argument(...)) -> None:
    """Lift a lock-out after failed logins."""
    _update(name, "user_unlocked", locked_until=None, failed_logins=0)


#: Seconds ``bot web`` waits for requests in flight after SIGTERM (renders are bounded by
#: the render limits, so a check in progress ends well within this).
GRACEFUL_SHUTDOWN_S = 10


def start_lines(host: str, port: int, *, secure_cookies: bool) -> list[str]:
    """What ``bot web`` says as it starts: where it listens and, when browsers on other
    machines will reach it, that it serves plain HTTP (HTTPS belongs in front of it)."""
    shown = f"[{host}]" if ":" in host else host
    lines = [f"dashboard on http://{shown}:{port}/ (API docs: /api/docs)"]
    if host not in LOOPBACK_HOSTS:
        if secure_cookies:
            lines.append(
                "warning: plain HTTP on a network address: browsers keep the sign-in cookie "
                "only over HTTPS, so put a TLS proxy in front (docs/security.md); on a "
                "closed test network only, BOT_WEB__SECURE_COOKIES=false"
            )
        else:
            lines.append(
                "warning: BOT_WEB__SECURE_COOKIES=false on a network address: sign-in "
                "cookies travel unencrypted; use this on a closed test network only"
            )
    return lines


def web_command(
    host: str | None = typer.Option(None, "--host"),
    port: int | None = typer.Option(None, "--port"),
) -> None:
    """Serve the review dashboard (BOT_WEB__HOST, BOT_WEB__PORT; put HTTPS in front)."""
    from bot.cli.config_cmd import preflight
    from bot.config_check import WEB

    s = preflight(WEB)  # before the app and its templates load
    import uvicorn

    from bot.store.migrate import upgrade
    from bot.web.app import create_app

    upgrade(s.db_url)
    host, port = host or s.web.host, port or s.web.port
    for line in start_lines(host, port, secure_cookies=s.web.secure_cookies):
        console.print(line, highlight=False)
    uvicorn.run(
        create_app(s),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=True,
        # SIGTERM: stop taking requests, give those in flight this long, then exit
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
