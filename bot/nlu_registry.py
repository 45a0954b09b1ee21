"""Versions of the answer-reading model, published only after a second person approves.

``bot nlu train`` writes a candidate model directory with its evaluation;
``bot nlu models submit DIR --by alice`` stores it (files zipped, sha256) as *pending*;
``bot nlu models approve VERSION --by bob`` — a different, active user allowed to approve
templates — publishes it (the previously published version is retired);
``reject`` turns a pending version down. Every step is an audit event.

With ``reading_model_source = "database"`` a worker loads the published version at start
(:func:`published_model_dir`): the zip is unpacked once into
``<data_dir>/models/reading/<version>-<digest>/``, atomically, and checked against its
digest; with none published it runs the packaged model. Every call records the version
that read it (``call_attempt.nlu_version``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.store.models import NluModelVersionRow, UserRow, utcnow
from bot.web.audit import audit
from bot.web.roles import Permission, allowed

PENDING, PUBLISHED, RETIRED, REJECTED = "pending", "published", "retired", "rejected"
#: Files a model directory must hold (see :mod:`nlu.reading.model`).
MODEL_FILES = ("config.json", "vocab.json", "weights.safetensors")
_EXTRA_FILES = ("training_report.json",)


class RegistryError(ValueError):
    """A refused registry step, with the reason in words."""


def pack(model_dir: Path) -> bytes:
    """The model's files as a zip, byte-identical for identical files."""
    missing = [n for n in MODEL_FILES if not (model_dir / n).is_file()]
    if missing:
        raise RegistryError(f"{model_dir} is not a reading model: missing {', '.join(missing)}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (*MODEL_FILES, *_EXTRA_FILES):
            path = model_dir / name
            if path.is_file():
                info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def digest(archive: bytes) -> str:
    return hashlib.sha256(archive).hexdigest()


def _user(session: Session, username: str) -> UserRow:
    user = session.exec(select(UserRow).where(UserRow.username == username)).first()
    if user is None or user.disabled:
        raise RegistryError(f"no active user '{username}'")
    return user


def submit(
    engine: Engine, model_dir: Path, author: str, report: dict[str, Any] | None = None
) -> NluModelVersionRow:
    """Store ``model_dir`` as a pending version (its version is the model's own)."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    version = str(config.get("version") or "")
    if not version:
        raise RegistryError(f"{model_dir}/config.json has no version")
    archive = pack(model_dir)
    if report is None and (model_dir / "training_report.json").is_file():
        report = json.loads((model_dir / "training_report.json").read_text(encoding="utf-8"))
    with Session(engine) as s:
        _user(s, author)
        if s.exec(select(NluModelVersionRow).where(NluModelVersionRow.version == version)).first():
            raise RegistryError(f"version {version} is already registered")
        row = NluModelVersionRow(
            version=version,
            digest=digest(archive),
            archive=archive,
            author=author,
            report=report or {},
        )
        s.add(row)
        audit(s, author, "nlu_model_submitted", "nlu_model", version, digest=row.digest)
        s.commit()
        s.refresh(row)
        return row


def _pending(session: Session, version: str) -> NluModelVersionRow:
    row = session.exec(
        select(NluModelVersionRow).where(NluModelVersionRow.version == version)
    ).first()
    if row is None:
        raise RegistryError(f"no model version {version}")
    if row.state != PENDING:
        raise RegistryError(f"version {version} is {row.state}, not pending")
    return row


def approve(engine: Engine, version: str, approver: str) -> NluModelVersionRow:
    """Publish a pending version: four eyes (not its author), an approving role."""
    with Session(engine) as s:
        user = _user(s, approver)
        row = _pending(s, version)
        if approver == row.author:
            raise RegistryError("a model is approved by a second person, not by its author")
        if not allowed(user.role, Permission.APPROVE_TEMPLATES):
            raise RegistryError(f"{approver} ({user.role}) may not approve models")
        for old in s.exec(
            select(NluModelVersionRow).where(NluModelVersionRow.state == PUBLISHED)
        ).all():
            old.state = RETIRED
            s.add(old)
        row.state, row.approved_by, row.published_at = PUBLISHED, approver, utcnow()
        s.add(row)
        audit(s, approver, "nlu_model_published", "nlu_model", version, author=row.author)
        s.commit()
        s.refresh(row)
        return row


def reject(engine: Engine, version: str, reviewer: str, reason: str) -> NluModelVersionRow:
    with Session(engine) as s:
        _user(s, reviewer)
        row = _pending(s, version)
        row.state = REJECTED
        s.add(row)
        audit(s, reviewer, "nlu_model_rejected", "nlu_model", version, reason=reason)
        s.commit()
        s.refresh(row)
        return row


def versions(engine: Engine) -> list[NluModelVersionRow]:
    with Session(engine) as s:
        return list(
            s.exec(select(NluModelVersionRow).order_by(col(NluModelVersionRow.id).desc())).all()
        )


def published(engine: Engine) -> NluModelVersionRow | None:
    with Session(engine) as s:
        return s.exec(
            select(NluModelVersionRow).where(NluModelVersionRow.state == PUBLISHED)
        ).first()


def unpack(row: NluModelVersionRow, root: Path) -> Path:
    """The version's files under ``root`` (unpacked once, atomically, digest-checked)."""
    if digest(row.archive) != row.digest:
        raise RegistryError(f"model version {row.version}: archive does not match its digest")
    target = root / f"{row.version}-{row.digest[:12]}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        with zipfile.ZipFile(io.BytesIO(row.archive)) as zf:
            for name in zf.namelist():
                if name not in (*MODEL_FILES, *_EXTRA_FILES):
                    raise RegistryError(f"model version {row.version}: unexpected file {name}")
                (tmp / name).write_bytes(zf.read(name))
        try:
            os.rename(tmp, target)
        except OSError:  # another worker unpacked it first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def published_model_dir(engine: Engine, root: Path) -> Path | None:
    """Where the published version's files are (None: nothing published)."""
    row = published(engine)
    return unpack(row, root) if row is not None else None
