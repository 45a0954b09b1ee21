"""Every action of the workspace, once: the pages and the JSON API call the same method
and differ only in how they read the input and show the result.

One :class:`Workspace` serves one request, acting for the signed-in user. A refusal raises
:class:`~bot.web.workspace.documents.WorkspaceError` (its HTTP status, message and located
problems); what a refusal records (``template_rejected``, ``self_approval_refused``) is
written in the request's session, which the caller must commit all the same.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bot.settings import Settings
from bot.web.i18n import N_
from bot.web.workspace import evaluation
from bot.web.workspace.approval import Actor, Workflow
from bot.web.workspace.checks import Draft, Report
from bot.web.workspace.diff import DiffLine, diff_lines, unified
from bot.web.workspace.documents import DocumentSummary, Kind, Version, WorkspaceError
from bot.web.workspace.evaluation import Evaluation
from bot.web.workspace.preview import AccountView, Preview, account_view, sample_accounts
from bot.web.workspace.preview import preview as render_preview
from bot.web.workspace.running import Running, running


@dataclass(frozen=True)
class Checked:
    """A version with its source and what the checks find in it now (they run against
    what is published now, so a version's errors can change after it was saved)."""

    version: Version
    source: str
    report: Report


@dataclass(frozen=True)
class Previewed:
    version: Version
    preview: Preview


@dataclass(frozen=True)
class VersionDiff:
    """From ``old`` to ``new``: the unified text and the numbered lines of its hunks."""

    old: Version
    new: Version
    unified: str
    lines: list[DiffLine]


def accounts() -> list[AccountView]:
    """Accounts a preview can use: the built-in sample and the public personas (masked)."""
    return [account_view(key, account) for key, account in sample_accounts().items()]


def _source(version: Version) -> str:
    """The source of a version loaded one at a time (listings leave it out)."""
    assert version.source is not None
    return version.source


class Workspace:
    """The documents, their checks and the four-eyes flow, for one request by ``actor``."""

    def __init__(
        self, session: Session, settings: Settings, now: dt.datetime, actor: Actor
    ) -> None:
        self.session = session
        self.settings = settings
        self.actor = actor
        self.flow = Workflow(session, settings, now)
        self.docs = self.flow.docs

    # -- reading --------------------------------------------------------------------------

    def overview(self) -> list[DocumentSummary]:
        """Every script and the rule set, with the published version and waiting ones."""
        return self.docs.overview()

    def running(self) -> Running:
        """Which templates the bot runs: the source, the published set's digest, and the
        set each worker last loaded."""
        return running(self.session, self.settings)

    def versions(self, kind: Kind, doc: str) -> list[Version]:
        """Newest first; version 0 (the packaged file) last; without sources."""
        return self.docs.versions(kind, doc)

    def names(self, versions: Iterable[Version]) -> dict[int, str]:
        """The usernames of the authors and approvers of ``versions``, by user id."""
        return self.docs.usernames({x for v in versions for x in (v.author_id, v.approved_by)})

    def version(self, kind: Kind, doc: str, number: int | None = None) -> Checked:
        """Version ``number`` (the published one when ``None``), checked."""
        docs = self.docs
        v = docs.published(kind, doc) if number is None else docs.get(kind, doc, number)
        source = _source(v)
        return Checked(v, source, self.flow.check(kind, doc, source))

    def diff(self, kind: Kind, doc: str, number: int, against: int | None = None) -> VersionDiff:
        """From version ``against`` (the published one when ``None``) to ``number``."""
        new = self.docs.get(kind, doc, number)
        old = (
            self.docs.published(kind, doc) if against is None else self.docs.get(kind, doc, against)
        )
        a, b = _source(old), _source(new)
        return VersionDiff(old, new, unified(a, b, old.ref, new.ref), diff_lines(a, b))

    def preview(self, kind: Kind, doc: str, number: int, account: str) -> Previewed:
        """Every prompt of a version rendered for a sample account (masked); the rule set
        has none (404)."""
        if not kind.in_tree:
            raise WorkspaceError(404, N_("the rule set has no prompts to preview"))
        v = self.docs.get(kind, doc, number)
        try:
            shown = render_preview(
                self.settings,
                self.docs.published_set(),
                Draft(kind, doc, _source(v)),
                number,
                account,
            )
        except KeyError:
            raise WorkspaceError(
                404, N_("no sample account '%(account)s'"), account=account
            ) from None
        return Previewed(v, shown)

    # -- editing --------------------------------------------------------------------------

    def lint(self, kind: Kind, doc: str, source: str) -> Report:
        """Check unsaved text; an escape attempt is audited even so."""
        return self.flow.lint(self.actor, kind, doc, source)

    def save(self, kind: Kind, doc: str, source: str) -> tuple[Version, Report]:
        """A draft (see :meth:`Workflow.save`): 422 with the refusals, not stored, when the
        sandbox screen refuses the text; stored with its lint errors otherwise."""
        return self.flow.save(self.actor, kind, doc, source)

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(
        self, kind: Kind, doc: str, number: int, sets: list[str], personas: list[str] | None
    ) -> Evaluation:
        """Run the personas through this version and the published set; the result is kept
        with the version (audit event ``evaluate``)."""
        v = self.docs.get(kind, doc, number)
        mine, theirs = evaluation.evaluate(
            self.settings,
            self.docs.published_set(),
            v,
            self.docs.published(kind, doc),
            sets,
            personas,
        )
        evaluation.store(self.session, self.actor.username, v, sets, mine, theirs)
        return Evaluation(mine, theirs, sets)

    def evaluate_steps(
        self, kind: Kind, doc: str, number: int, sets: list[str], personas: list[str] | None
    ) -> Iterator[dict[str, Any]]:
        """:meth:`evaluate` step by step, for a page that shows progress: refusals are
        raised before the first step; then one ``{"done", "total", "percent"}`` per
        persona run, and ``{"finished": True, ...}`` once the result is stored (in a
        session of its own: the request's transaction is over by then)."""
        v = self.docs.get(kind, doc, number)
        ready = evaluation.plan(
            self.settings,
            self.docs.published_set(),
            v,
            self.docs.published(kind, doc),
            sets,
            personas,
        )
        engine = self.session.get_bind()
        actor = self.actor.username
        return _steps(ready, engine, actor, v, sets)

    def latest_evaluation(self, version: Version) -> Evaluation | None:
        return evaluation.latest(self.session, version)

    def evaluation_of(self, kind: Kind, doc: str, number: int) -> tuple[Version, Evaluation | None]:
        """Version ``number`` and its latest evaluation (``None``: never evaluated)."""
        v = self.docs.get(kind, doc, number)
        return v, self.latest_evaluation(v)

    # -- four eyes ------------------------------------------------------------------------

    def submit(self, kind: Kind, doc: str, number: int) -> Version:
        return self.flow.submit(self.actor, kind, doc, number)

    def approve(self, kind: Kind, doc: str, number: int) -> Version:
        return self.flow.approve(self.actor, kind, doc, number)

    def reject(self, kind: Kind, doc: str, number: int, reason: str) -> Version:
        return self.flow.reject(self.actor, kind, doc, number, reason)

    def rollback(self, kind: Kind, doc: str, number: int) -> Version:
        return self.flow.rollback(self.actor, kind, doc, number)


def _step(done: int, total: int, **more: Any) -> dict[str, Any]:
    return {"done": done, "total": total, "percent": 100 * done // max(total, 1), **more}


def _steps(
    ready: evaluation.Plan, engine: Any, actor: str, v: Version, sets: list[str]
) -> Iterator[dict[str, Any]]:
    """Runs the plan in a thread of its own and yields its progress as it comes; the
    result is stored once it is complete."""
    steps: queue.Queue[tuple[int, int]] = queue.Queue()
    result: list[tuple[evaluation.Side, evaluation.Side]] = []
    failed: list[str] = []

    def work() -> None:
        try:
            result.append(ready.run(lambda done, total: steps.put((done, total))))
        except Exception as exc:  # told to the page, not lost with the thread
            failed.append(f"{type(exc).__name__}: {exc}")
        finally:
            steps.put((-1, -1))

    threading.Thread(target=work, name="workspace-evaluation", daemon=True).start()
    yield _step(0, ready.total)
    while (item := steps.get())[0] >= 0:
        yield _step(*item)
    if not result:
        yield {"error": failed[0] if failed else "no result"}
        return
    mine, theirs = result[0]
    with Session(engine) as session:
        evaluation.store(session, actor, v, sets, mine, theirs)
        session.commit()
    yield _step(ready.total, ready.total, finished=True, passed=mine.summary.get("passed"))
