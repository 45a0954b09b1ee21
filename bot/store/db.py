"""Engines and sessions for SQLite (embedded default, WAL) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (the dashboard) never block the writer (the worker).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL and foreign keys, their folder is made;
    PostgreSQL gets a pool that survives dropped connections and restarts (pre-ping,
    recycling, connect timeout, keepalives)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not url.startswith("sqlite://:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kw
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        _server_defaults(url, kw)
    return sa.create_engine(url, **kw)


#: Pooled PostgreSQL connections are replaced after this long, before a firewall, load
#: balancer or pgbouncer drops them as idle (typical limits are 1 hour and more).
PG_POOL_RECYCLE_S = 1800
#: How long opening a PostgreSQL connection may take before it counts as a failure.
PG_CONNECT_TIMEOUT_S = 10
#: TCP keepalives: a connection to a server that vanished (host down, network cut)
#: fails after about idle + interval * count seconds instead of hanging.
PG_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _server_defaults(url: str, kw: dict[str, Any]) -> None:
    """Pool settings for a database server that may restart or drop connections:
    every checkout is pinged first (a connection the server terminated is replaced
    instead of failing the caller's first statement), and connections are recycled.
    Callers' own values win."""
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_recycle", PG_POOL_RECYCLE_S)
    kw.setdefault("pool_size", 5)
    kw.setdefault("max_overflow", 5)
    if sa.engine.make_url(url).get_driver_name() in ("psycopg", "psycopg2"):
        args = {"connect_timeout": PG_CONNECT_TIMEOUT_S, **PG_KEEPALIVES}
        kw["connect_args"] = {**args, **kw.get("connect_args", {})}


@contextmanager
def engine_for(url: str, engine: Engine | None = None) -> Iterator[Engine]:
    """``engine`` when the caller has one, else a fresh engine for ``url`` that is disposed
    when the block ends."""
    if engine is not None:
        yield engine
        return
    own = make_engine(url)
    try:
        yield own
    finally:
        own.dispose()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def database_answers(engine: Engine, timeout_s: float = 2.0) -> str:
    """``ok``, or why ``SELECT 1`` did not answer within ``timeout_s``: the readiness
    probes' database check (the dashboard's and the worker's ``/readyz``). The query runs
    in a daemon thread, so a hung server cannot hang the probe; the answer never shows an
    address or a driver message, only the exception's type."""
    outcome: list[str] = []

    def ping() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            outcome.append("ok")
        except Exception as exc:
            outcome.append(f"unreachable ({type(exc).__name__})")

    thread = threading.Thread(target=ping, name="readyz-db", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return outcome[0] if outcome else f"no answer within {timeout_s:g} s"
