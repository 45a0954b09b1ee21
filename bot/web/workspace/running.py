"""Which templates the bot runs, for the workspace's front page.

With ``templates_source = "files"`` the packaged files run and nothing published here
reaches a call. With ``"database"`` the published set runs: its digest now, and each
worker's last ``templates_loaded`` event (:mod:`bot.templates_live`) say whether the
workers picked it up yet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.settings import Settings
from bot.store.models import AuditEventRow
from bot.templates_live import LOADED, current_digest

#: Events read to find each worker's latest set (a page, not a report).
RECENT = 200


@dataclass(frozen=True)
class WorkerSet:
    worker: str
    digest: str
    at: dt.datetime
    #: It runs the set published now.
    current: bool


@dataclass(frozen=True)
class Running:
    source: str
    templates_dir: str
    #: The digest of the published set (``""`` with ``source = files``).
    digest: str
    reload_s: float
    #: Each worker's latest set, newest first.
    workers: list[WorkerSet]


def running(session: Session, settings: Settings) -> Running:
    source = settings.templates_source
    if source != "database":
        return Running(source, str(settings.templates_dir), "", settings.templates_reload_s, [])
    engine = session.get_bind()
    digest = current_digest(settings, engine)  # type: ignore[arg-type]
    latest: dict[str, WorkerSet] = {}
    rows = session.exec(
        select(AuditEventRow.actor, AuditEventRow.detail, AuditEventRow.at)
        .where(AuditEventRow.action == LOADED)
        .order_by(col(AuditEventRow.id).desc())
        .limit(RECENT)
    ).all()
    for actor, detail, at in rows:
        if actor not in latest:
            got = str((detail or {}).get("digest", ""))
            latest[actor] = WorkerSet(actor, got, at, got == digest)
    return Running(
        source, str(settings.templates_dir), digest, settings.templates_reload_s, [*latest.values()]
    )
