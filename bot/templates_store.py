"""Published script and rule-set versions in the database -> the templates the bot runs.

The compliance workspace (``bot.web.workspace``) keeps every version of a script and of
the rule set in ``script_version`` / ``ruleset_version``; a version reaches the bot only
once a second person has approved it (state ``published``). The packaged files under
``settings.templates_dir`` (and ``settings.ruleset_file``) are version 0 of each document:
whatever has no published version in the database runs as packaged.

Scripts, blocks and language packs share ``script_version`` (a block's or pack's rows are
keyed ``blocks/<stem>`` / ``languages/<stem>``, :func:`row_key`).

With ``templates_source = "database"`` a worker calls :func:`materialise_published` at
start: the published sources are written over a copy of the packaged tree into
``<data_dir>/templates/<digest of the whole set>/``. The directory is content-addressed
and created atomically (written under a temporary name, then renamed), so workers that
start at the same time agree on it and never read a half-written set. A running worker
checks :func:`set_digest` of the published set now and then and moves to a new set for
its next call (:mod:`bot.templates_live`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.settings import Settings
from bot.store.models import RulesetVersionRow, ScriptVersionRow

#: The rule set is one document; its file name inside a templates tree.
RULESET_ID = "default"
RULESET_FILE = Path("rulesets") / "default.yaml"
PUBLISHED = "published"
_SKIP_SUFFIXES = (".py", ".pyc")


def source_digest(source: str) -> str:
    """The digest stored with a version: sha256 of its text."""
    return hashlib.sha256(source.encode()).hexdigest()


def base_ruleset_path(settings: Settings) -> Path:
    """Version 0 of the rule set: ``ruleset_file`` if set, else the packaged one."""
    return settings.ruleset_file or settings.templates_dir / RULESET_FILE


#: The folders of a templates tree whose files are workspace documents, each file one
#: document named by its stem. Their versions share ``script_version``: a script's rows
#: are keyed by its id (as they always were), the others by ``<folder>/<stem>``.
FOLDERS = ("scripts", "blocks", "languages")


def row_key(folder: str, doc: str) -> str:
    """``script_version.script_id`` of document ``doc`` in ``folder``."""
    return doc if folder == "scripts" else f"{folder}/{doc}"


def split_key(key: str) -> tuple[str, str]:
    """(folder, document) of a ``script_version.script_id``."""
    folder, sep, doc = key.partition("/")
    return (folder, doc) if sep and folder in FOLDERS else ("scripts", key)


def packaged_docs(templates_dir: Path, folder: str) -> dict[str, str]:
    """Version 0 of every document of ``folder``: the file's stem -> source."""
    return {
        path.stem: path.read_text(encoding="utf-8")
        for path in sorted((templates_dir / folder).glob("*.yaml"))
    }


def packaged_scripts(templates_dir: Path) -> dict[str, str]:
    """Version 0 of every script: id (the file's stem) -> source."""
    return packaged_docs(templates_dir, "scripts")


@dataclass(frozen=True)
class PublishedSet:
    """What the database says runs: script id -> source, block and language-pack file
    stems -> source, and the rule set's source (``None``: nothing published, the packaged
    file runs). What is not here runs as packaged."""

    scripts: dict[str, str]
    ruleset: str | None
    blocks: dict[str, str] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)

    def folder(self, name: str) -> dict[str, str]:
        """The published documents of one folder of the tree (``FOLDERS``)."""
        found: dict[str, str] = getattr(self, name)
        return found


def published_set(session: Session) -> PublishedSet:
    by_folder: dict[str, dict[str, str]] = {name: {} for name in FOLDERS}
    for key, source in session.exec(
        select(ScriptVersionRow.script_id, ScriptVersionRow.source)
        .where(ScriptVersionRow.state == PUBLISHED)
        .order_by(col(ScriptVersionRow.id))
    ):
        folder, doc = split_key(key)
        by_folder[folder][doc] = source
    ruleset = session.exec(
        select(RulesetVersionRow)
        .where(RulesetVersionRow.state == PUBLISHED)
        .order_by(col(RulesetVersionRow.id).desc())
    ).first()
    return PublishedSet(
        by_folder["scripts"],
        ruleset.source if ruleset else None,
        by_folder["blocks"],
        by_folder["languages"],
    )


@dataclass(frozen=True)
class Materialised:
    root: Path
    ruleset: Path
    #: sha256 over every file of the set (names and contents).
    digest: str


def _tree_files(templates_dir: Path) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(templates_dir.rglob("*")):
        rel = path.relative_to(templates_dir)
        if (
            path.is_file()
            and "__pycache__" not in rel.parts
            and not path.name.endswith(_SKIP_SUFFIXES)
        ):
            yield rel, path.read_bytes()


def assemble(templates_dir: Path, base_ruleset: Path, published: PublishedSet) -> dict[Path, bytes]:
    """Relative path -> content of the set that runs: packaged files, the published
    versions over them."""
    files = dict(_tree_files(templates_dir))
    files[RULESET_FILE] = (
        published.ruleset.encode() if published.ruleset is not None else base_ruleset.read_bytes()
    )
    for folder in FOLDERS:
        for doc, source in published.folder(folder).items():
            files[Path(folder) / f"{doc}.yaml"] = source.encode()
    return files


def set_digest(files: Mapping[Path, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files, key=str):
        h.update(str(rel).encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()


def write_set(files: Mapping[Path, bytes], out_root: Path) -> Materialised:
    """Write ``files`` to ``out_root/<digest>/`` unless it is there already (atomic)."""
    digest = set_digest(files)
    final = out_root / digest[:24]
    if not final.is_dir():
        out_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_root))
        try:
            for rel, data in files.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(data)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # not a lost race with another worker: a real error
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Materialised(final, final / RULESET_FILE, digest)


def materialise(
    engine: Engine, templates_dir: Path, base_ruleset: Path, out_root: Path
) -> Materialised:
    with Session(engine) as session:
        published = published_set(session)
    return write_set(assemble(templates_dir, base_ruleset, published), out_root)


def materialise_published(settings: Settings, engine: Engine | None = None) -> Materialised:
    """The published set of ``settings``' database under ``<data_dir>/templates``."""
    from bot.store.db import engine_for

    with engine_for(settings.db_url, engine) as eng:
        return materialise(
            eng,
            settings.templates_dir,
            base_ruleset_path(settings),
            settings.data_dir / "templates",
        )
