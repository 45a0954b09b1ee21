"""PostgreSQL helpers for outage tests.

* :func:`tagged_engine`: a migrated, fresh schema on the shared test server, through an
  engine whose connections carry their own ``application_name``, so that a test can
  terminate exactly its own connections (:func:`terminate`) and nobody else's.
* :class:`Cluster`: a throwaway PostgreSQL server (``initdb`` into a temporary folder,
  ``pg_ctl`` on a free port) that a test may stop, start and restart. The shared server
  is never restarted.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.store.db import make_engine
from bot.store.migrate import upgrade_connection
from tests.conftest import free_port


def new_tag() -> str:
    return f"bot-test-{uuid.uuid4().hex[:10]}"


@contextmanager
def tagged_engine(base_url: str, tag: str, **kw: object) -> Iterator[Engine]:
    """``make_engine`` on a fresh, migrated schema; every connection is named ``tag``."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(
        base_url,
        connect_args={"options": f"-csearch_path={schema}", "application_name": tag},
        **kw,
    )
    try:
        with engine.begin() as conn:
            upgrade_connection(conn)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def terminate(admin: Engine, tag: str) -> int:
    """Terminate the server processes of every connection named ``tag`` (only those);
    returns how many there were."""
    with admin.begin() as conn:
        return len(
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :tag AND pid <> pg_backend_pid()"
                ),
                {"tag": tag},
            ).all()
        )


# -- a throwaway server -----------------------------------------------------------------


def _bin_dir() -> Path | None:
    for initdb in [
        *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True),
        shutil.which("initdb"),
    ]:
        if initdb and Path(initdb).is_file():
            real = Path(initdb).resolve().parent
            if (real / "pg_ctl").is_file():
                return real
    return None


def cluster_problem() -> str:
    """Why no throwaway cluster can be made here ("" if one can)."""
    if _bin_dir() is None:
        return "initdb/pg_ctl not found (install PostgreSQL server binaries)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: initdb refuses root"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no 'postgres' user to run initdb as"
    return ""


class Cluster:
    """A private PostgreSQL server in a temporary folder, owned by ``postgres`` when
    the tests run as root (initdb refuses root). Trust authentication, loopback only,
    fsync off (nothing here needs to survive a power cut)."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        assert bin_dir is not None, cluster_problem()
        self.bin = bin_dir
        # Not pytest's tmp_path: its parents are private to root, and the server runs
        # as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="bot-pgtest-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.started = False

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database on this (running) server; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
        finally:
            admin.dispose()
        return self.url_for(name)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.root,
        )

    def _ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", options, *args,
        )  # fmt: skip

    def start(self) -> None:
        self._ctl("start")
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)
        self.started = False

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")
        self.started = True

    def close(self) -> None:
        """Stop the server (if running) and remove its folder."""
        try:
            if self.started:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A started throwaway server, removed afterwards; skips the test (with
    :func:`cluster_problem`'s reason) where none can be made."""
    import pytest

    problem = cluster_problem()
    if problem:
        pytest.skip(problem)
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@contextmanager
def fresh_engine(cluster: Cluster) -> Iterator[Engine]:
    """A fresh, migrated database on the throwaway server, through ``make_engine``'s
    pool; starts the server first if a failed test left it stopped."""
    from bot.store.migrate import upgrade

    if not cluster.started:
        cluster.start()
    url = cluster.new_database()
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
