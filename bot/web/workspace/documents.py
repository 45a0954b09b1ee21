"""The workspace's documents (each script, block and language pack, and the rule set)
and their versions.

A version is a row of ``script_version`` / ``ruleset_version``; rows are never edited
except for their state (and who approved them, when). Blocks and language packs share
``script_version`` with the scripts, keyed ``blocks/<stem>`` / ``languages/<stem>``
(:func:`bot.templates_store.row_key`). Version 0 of each document is the packaged file
(``settings.templates_dir``, ``settings.ruleset_file``): it is not stored, and counts as
published while nothing of that document is published in the database.

States: ``draft`` (saved, editable by saving a new version) -> ``pending`` (submitted,
waiting for a second person) -> ``published`` (what the bot runs) -> ``retired`` (a later
version was published); a pending version may instead be ``rejected``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from bot.settings import Settings
from bot.store.models import RulesetVersionRow, ScriptVersionRow, UserRow
from bot.templates_store import (
    RULESET_ID,
    PublishedSet,
    base_ruleset_path,
    packaged_docs,
    published_set,
    row_key,
    source_digest,
    split_key,
)
from bot.web.deps import ServiceRefusal
from bot.web.i18n import N_

DocRow = ScriptVersionRow | RulesetVersionRow
#: Longest source accepted (a script is a few kilobytes).
MAX_SOURCE_CHARS = 200_000
#: Versions listed per document (newest first).
LIST_LIMIT = 200


class Kind(StrEnum):
    """A kind of document; the value is its folder in a templates tree (and its URL)."""

    SCRIPTS = "scripts"
    BLOCKS = "blocks"
    LANGUAGES = "languages"
    RULESETS = "rulesets"

    @property
    def in_tree(self) -> bool:
        """Stored in ``script_version`` (a file of the templates tree)."""
        return self is not Kind.RULESETS

    @property
    def singular(self) -> str:
        return _SINGULAR[self]


_SINGULAR = {
    Kind.SCRIPTS: "script",
    Kind.BLOCKS: "block",
    Kind.LANGUAGES: "language",
    Kind.RULESETS: "ruleset",
}


class State(StrEnum):
    DRAFT = "draft"
    PENDING = "pending"
    PUBLISHED = "published"
    RETIRED = "retired"
    REJECTED = "rejected"


#: A version's state as the pages name it (English message ids, translated where shown).
STATE_LABELS: dict[str, str] = {
    State.DRAFT: N_("draft"),
    State.PENDING: N_("pending approval"),
    State.PUBLISHED: N_("published"),
    State.RETIRED: N_("retired"),
    State.REJECTED: N_("rejected"),
}
#: A kind of document as the pages name it.
KIND_LABELS: dict[str, str] = {
    Kind.SCRIPTS: N_("script"),
    Kind.BLOCKS: N_("block"),
    Kind.LANGUAGES: N_("language pack"),
    Kind.RULESETS: N_("rule set"),
}
#: Parameters of a refusal's message that are vocabulary, translated with it: the
#: message names a state or a kind of document (``Kind.singular``) by its label.
_WORDS: dict[str, dict[str, str]] = {
    "state": STATE_LABELS,
    "kind": {k.singular: KIND_LABELS[k] for k in Kind},
}


class WorkspaceError(ServiceRefusal):
    """A refusal with its HTTP status (404 unknown, 403 four-eyes, 409 wrong state,
    422 checks failed); ``problems`` are the located errors behind a 422/409. The
    version states and document kinds named in it are translated on pages."""

    words = _WORDS


@dataclass(frozen=True)
class Version:
    kind: Kind
    doc: str
    version: int
    state: str
    digest: str
    author_id: int | None = None
    approved_by: int | None = None
    created_at: dt.datetime | None = None
    published_at: dt.datetime | None = None
    #: Loaded by :meth:`Documents.get` only (listings leave it out).
    source: str | None = None

    @property
    def packaged(self) -> bool:
        return self.version == 0

    @property
    def ref(self) -> str:
        return f"{self.doc}@{self.version}"

    @property
    def object_type(self) -> str:
        """The audit log's object type."""
        return self.kind.singular


def _model(kind: Kind) -> Any:
    """The row class (typed ``Any``: the two share columns but not a typed base)."""
    return ScriptVersionRow if kind.in_tree else RulesetVersionRow


def _row_version(row: Any) -> int:
    return int(row.version)


class Documents:
    """Reads and writes versions in the request's transaction."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    # -- documents ----------------------------------------------------------------------

    @staticmethod
    def packaged_text(settings: Settings, kind: Kind, doc: str) -> str:
        """Version 0 of a document known to exist."""
        if kind is Kind.RULESETS:
            return base_ruleset_path(settings).read_text(encoding="utf-8")
        return (settings.templates_dir / kind.value / f"{doc}.yaml").read_text(encoding="utf-8")

    def packaged_source(self, kind: Kind, doc: str) -> str:
        self.require(kind, doc)
        return self.packaged_text(self.settings, kind, doc)

    def doc_ids(self, kind: Kind) -> list[str]:
        if kind is Kind.RULESETS:
            return [RULESET_ID]
        return sorted(packaged_docs(self.settings.templates_dir, kind.value))

    def require(self, kind: Kind, doc: str) -> None:
        if doc not in self.doc_ids(kind):
            raise WorkspaceError(404, N_("no %(kind)s '%(doc)s'"), kind=kind.singular, doc=doc)

    def published_set(self) -> PublishedSet:
        return published_set(self.session)

    # -- versions -----------------------------------------------------------------------

    def _where(self, kind: Kind, doc: str) -> Any:
        if kind.in_tree:
            return ScriptVersionRow.script_id == row_key(kind.value, doc)
        return sa.true()

    def _to_version(self, kind: Kind, doc: str, row: Any, with_source: bool) -> Version:
        return Version(
            kind,
            doc,
            _row_version(row),
            row.state,
            row.digest,
            row.author_id,
            row.approved_by,
            row.created_at,
            row.published_at,
            row.source if with_source else None,
        )

    def _packaged(self, kind: Kind, doc: str, anything_published: bool) -> Version:
        source = self.packaged_source(kind, doc)
        state = State.RETIRED if anything_published else State.PUBLISHED
        return Version(kind, doc, 0, state.value, source_digest(source), source=source)

    def _published_row(self, kind: Kind, doc: str) -> DocRow | None:
        model = _model(kind)
        row: DocRow | None = self.session.exec(
            select(model)
            .where(self._where(kind, doc), model.state == State.PUBLISHED)
            .order_by(col(model.id).desc())
        ).first()
        return row

    def versions(self, kind: Kind, doc: str) -> list[Version]:
        """Newest first, version 0 last (without sources)."""
        self.require(kind, doc)
        model = _model(kind)
        columns: list[Any] = [model.version, model.state, model.digest, model.author_id]
        columns += [model.approved_by, model.created_at, model.published_at, model.id]
        rows = self.session.exec(
            select(*columns)
            .where(self._where(kind, doc))
            .order_by(col(model.id).desc())
            .limit(LIST_LIMIT)
        ).all()
        out = [self._to_version(kind, doc, r, with_source=False) for r in rows]
        out.sort(key=lambda v: -v.version)
        published = self._published_row(kind, doc) is not None
        return [*out, self._packaged(kind, doc, published)]

    def _row(self, kind: Kind, doc: str, version: int) -> DocRow:
        model = _model(kind)
        wanted = version if kind.in_tree else str(version)
        row: DocRow | None = self.session.exec(
            select(model).where(self._where(kind, doc), model.version == wanted)
        ).first()
        if row is None:
            raise WorkspaceError(
                404, N_("%(doc)s has no version %(version)s"), doc=doc, version=version
            )
        return row

    def get(self, kind: Kind, doc: str, version: int) -> Version:
        self.require(kind, doc)
        if version == 0:
            return self._packaged(kind, doc, self._published_row(kind, doc) is not None)
        return self._to_version(kind, doc, self._row(kind, doc, version), with_source=True)

    def published(self, kind: Kind, doc: str) -> Version:
        self.require(kind, doc)
        row = self._published_row(kind, doc)
        if row is None:
            return self._packaged(kind, doc, False)
        return self._to_version(kind, doc, row, with_source=True)

    def next_version(self, kind: Kind, doc: str) -> int:
        model = _model(kind)
        if kind.in_tree:
            top = self.session.exec(
                select(func.max(ScriptVersionRow.version)).where(self._where(kind, doc))
            ).one()
            return int(top or 0) + 1
        numbers = self.session.exec(select(model.version)).all()
        return max((int(n) for n in numbers), default=0) + 1

    def latest(self, kind: Kind, doc: str) -> Version | None:
        model = _model(kind)
        row = self.session.exec(
            select(model).where(self._where(kind, doc)).order_by(col(model.id).desc())
        ).first()
        return self._to_version(kind, doc, row, with_source=True) if row else None

    def add(
        self, kind: Kind, doc: str, source: str, state: State, author_id: int, now: dt.datetime
    ) -> Version:
        """A new version row (the caller's transaction); 409 if someone saved the same
        version number at the same moment."""
        number = self.next_version(kind, doc)
        common: dict[str, Any] = {
            "digest": source_digest(source),
            "source": source,
            "state": state.value,
            "author_id": author_id,
            "created_at": now,
        }
        row: DocRow = (
            ScriptVersionRow(script_id=row_key(kind.value, doc), version=number, **common)
            if kind.in_tree
            else RulesetVersionRow(version=str(number), **common)
        )
        self.session.add(row)
        try:
            self.session.flush()
        except sa.exc.IntegrityError as exc:
            self.session.rollback()
            raise WorkspaceError(
                409, N_("another version was saved at the same time: retry")
            ) from exc
        return self._to_version(kind, doc, row, with_source=True)

    def set_state(
        self,
        version: Version,
        state: State,
        *,
        approved_by: int | None = None,
        published_at: dt.datetime | None = None,
    ) -> Version:
        row = self._row(version.kind, version.doc, version.version)
        row.state = state.value
        if approved_by is not None:
            row.approved_by = approved_by
        if published_at is not None:
            row.published_at = published_at
        self.session.add(row)
        self.session.flush()
        return self._to_version(version.kind, version.doc, row, with_source=True)

    # -- overview -----------------------------------------------------------------------

    def overview(self) -> list[DocumentSummary]:
        """Every document with its published version and how many versions wait, from
        two GROUP BY queries."""
        counts: dict[tuple[Kind, str], dict[str, int]] = {}
        published: dict[tuple[Kind, str], int] = {}
        s = ScriptVersionRow
        for key, state, n, top in self.session.exec(
            select(s.script_id, s.state, func.count(), func.max(s.version)).group_by(
                s.script_id, s.state
            )
        ):
            folder, doc = split_key(key)
            counts.setdefault((Kind(folder), doc), {})[state] = n
            if state == State.PUBLISHED:
                published[(Kind(folder), doc)] = int(top)
        r = RulesetVersionRow
        for state, n in self.session.exec(select(r.state, func.count()).group_by(r.state)):
            counts.setdefault((Kind.RULESETS, RULESET_ID), {})[state] = n
        row = self._published_row(Kind.RULESETS, RULESET_ID)
        if row is not None:
            published[(Kind.RULESETS, RULESET_ID)] = _row_version(row)
        out = []
        for kind in Kind:
            for doc in self.doc_ids(kind):
                c = counts.get((kind, doc), {})
                out.append(
                    DocumentSummary(
                        kind,
                        doc,
                        published.get((kind, doc), 0),
                        c.get(State.DRAFT, 0),
                        c.get(State.PENDING, 0),
                        sum(c.values()),
                    )
                )
        return out

    def usernames(self, ids: set[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        rows = self.session.exec(
            select(UserRow.id, UserRow.username).where(col(UserRow.id).in_(wanted))
        ).all()
        return {int(i): name for i, name in rows if i is not None}


@dataclass(frozen=True)
class DocumentSummary:
    kind: Kind
    doc: str
    published_version: int
    drafts: int
    pending: int
    versions: int
