"""Saving drafts and the four-eyes flow, each step audited in the caller's transaction.

* save: a new ``draft`` version; refused (not stored, audited ``template_rejected``) when
  the sandbox screen finds an escape attempt, and refused (409, not stored) when it is
  the published version's text again (nothing would change); stored with its lint
  errors otherwise.
* submit: the author sends a draft without errors for approval (``pending``).
* approve: a *different* user with ``approve_templates`` publishes a pending version
  (the checks run again against what is published now); the previously published
  version of that document is ``retired``. Approving one's own version is refused (403)
  and audited ``self_approval_refused``.
* reject: a pending version is set aside (``rejected``) with a reason (audited
  ``approval_rejected``; ``template_rejected`` is the sandbox's refusal).
* roll back: an earlier version's source becomes a new ``pending`` version authored by
  the person asking, so it too needs a second person before it is published.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from bot.settings import Settings
from bot.templates_store import source_digest
from bot.web.audit import audit
from bot.web.i18n import N_
from bot.web.workspace.checks import Problem, Report, check
from bot.web.workspace.documents import (
    MAX_SOURCE_CHARS,
    Documents,
    Kind,
    State,
    Version,
    WorkspaceError,
)

#: Why a version with lint errors cannot move on, by action.
_CANNOT = {
    "submit": N_("cannot submit: %(n)s problem(s) to fix"),
    "publish": N_("cannot publish: %(n)s problem(s) to fix"),
    "roll back": N_("cannot roll back: %(n)s problem(s) to fix"),
}


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str


def _problems(problems: list[Problem]) -> list[dict[str, object]]:
    return [{"line": p.line, "field": p.field, "reason": p.message} for p in problems[:20]]


class Workflow:
    def __init__(self, session: Session, settings: Settings, now: dt.datetime) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self.docs = Documents(session, settings)

    def check(self, kind: Kind, doc: str, source: str) -> Report:
        return check(self.settings, self.docs.published_set(), kind, doc, source)

    def lint(self, actor: Actor, kind: Kind, doc: str, source: str) -> Report:
        """Check unsaved text (the editor, as one types). Refusals are audited here too:
        the text never runs, but an attempt is an attempt."""
        self.docs.require(kind, doc)
        _check_size(source)
        report = self.check(kind, doc, source)
        if report.refused:
            self._rejected(actor, kind, doc, source, report, "lint")
        return report

    def _rejected(
        self, actor: Actor, kind: Kind, doc: str, source: str, report: Report, stage: str
    ) -> None:
        audit(
            self.session,
            actor.username,
            "template_rejected",
            kind.singular,
            doc,
            stage=stage,
            digest=source_digest(source),
            problems=_problems(report.refused),
        )

    def save(self, actor: Actor, kind: Kind, doc: str, source: str) -> tuple[Version, Report]:
        """A new draft (or the latest draft itself when the text is unchanged).

        Raises :class:`WorkspaceError` 422 with the refusals when the sandbox screen
        refuses the text; the caller must still commit (the audit event stays).
        """
        self.docs.require(kind, doc)
        _check_size(source)
        report = self.check(kind, doc, source)
        if report.refused:
            self._rejected(actor, kind, doc, source, report, "save")
            raise WorkspaceError(
                422, N_("refused: the template tries to leave the sandbox"), report.refused
            )
        published = self.docs.published(kind, doc)
        if _same_text(published.source or "", source):
            raise WorkspaceError(
                409,
                N_(
                    "this text is identical to the published version (v%(version)s): "
                    "a draft must change something"
                ),
                version=published.version,
            )
        latest = self.docs.latest(kind, doc)
        if (
            latest is not None
            and latest.state == State.DRAFT
            and latest.author_id == actor.user_id
            and latest.digest == source_digest(source)
        ):
            return latest, report
        version = self.docs.add(kind, doc, source, State.DRAFT, actor.user_id, self.now)
        audit(
            self.session,
            actor.username,
            "template_saved",
            version.object_type,
            version.ref,
            digest=version.digest,
            errors=len(report.errors),
        )
        return version, report

    def _passes(self, version: Version, action: str) -> None:
        assert version.source is not None
        report = self.check(version.kind, version.doc, version.source)
        if not report.ok:
            raise WorkspaceError(
                422 if action == "submit" else 409,
                _CANNOT[action],
                report.problems,
                n=len(report.problems),
            )

    def submit(self, actor: Actor, kind: Kind, doc: str, number: int) -> Version:
        version = self.docs.get(kind, doc, number)
        if version.state != State.DRAFT:
            raise WorkspaceError(
                409,
                N_("only a draft can be submitted (this one is %(state)s)"),
                state=version.state,
            )
        if version.author_id != actor.user_id:
            raise WorkspaceError(409, N_("only the author submits a draft"))
        self._passes(version, "submit")
        version = self.docs.set_state(version, State.PENDING)
        audit(self.session, actor.username, "template_submitted", version.object_type, version.ref)
        return version

    def approve(self, actor: Actor, kind: Kind, doc: str, number: int) -> Version:
        version = self.docs.get(kind, doc, number)
        if version.state != State.PENDING:
            raise WorkspaceError(
                409, N_("only a pending version can be approved (%(state)s)"), state=version.state
            )
        if version.author_id == actor.user_id:
            audit(
                self.session,
                actor.username,
                "self_approval_refused",
                version.object_type,
                version.ref,
            )
            raise WorkspaceError(403, N_("four eyes: a second person must approve your version"))
        self._passes(version, "publish")
        before = self.docs.published(kind, doc)
        if not before.packaged:
            self.docs.set_state(before, State.RETIRED)
        version = self.docs.set_state(
            version, State.PUBLISHED, approved_by=actor.user_id, published_at=self.now
        )
        audit(self.session, actor.username, "template_approved", version.object_type, version.ref)
        audit(
            self.session,
            actor.username,
            "template_published",
            version.object_type,
            version.ref,
            digest=version.digest,
            replaces=before.version,
        )
        return version

    def reject(self, actor: Actor, kind: Kind, doc: str, number: int, reason: str) -> Version:
        reason = reason.strip()
        if not reason:
            raise WorkspaceError(422, N_("say why the version is rejected"))
        version = self.docs.get(kind, doc, number)
        if version.state != State.PENDING:
            raise WorkspaceError(
                409, N_("only a pending version can be rejected (%(state)s)"), state=version.state
            )
        version = self.docs.set_state(version, State.REJECTED)
        audit(
            self.session,
            actor.username,
            "approval_rejected",
            version.object_type,
            version.ref,
            reason=reason[:500],
        )
        return version

    def rollback(self, actor: Actor, kind: Kind, doc: str, number: int) -> Version:
        """A new pending version with the source of ``number`` (once published)."""
        old = self.docs.get(kind, doc, number)
        current = self.docs.published(kind, doc)
        if old.version == current.version:
            raise WorkspaceError(409, N_("this version is the one published now"))
        if old.state != State.RETIRED:
            raise WorkspaceError(409, N_("only a version that was published can be rolled back to"))
        assert old.source is not None
        self._passes(old, "roll back")
        version = self.docs.add(kind, doc, old.source, State.PENDING, actor.user_id, self.now)
        audit(
            self.session,
            actor.username,
            "template_rollback",
            version.object_type,
            version.ref,
            source_version=old.version,
            replaces=current.version,
        )
        return version


def _same_text(a: str, b: str) -> bool:
    """Identical but for line endings and blank space at the very start and end (what a
    browser's text area adds or drops)."""
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def _check_size(source: str) -> None:
    if len(source) > MAX_SOURCE_CHARS:
        raise WorkspaceError(413, N_("the document is over %(n)s characters"), n=MAX_SOURCE_CHARS)
