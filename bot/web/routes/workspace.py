"""The compliance workspace: pages and JSON API to edit scripts and the rule set, lint
them as one types, preview prompts, evaluate on personas, compare versions, and publish
under four eyes (see :mod:`bot.web.workspace`).

``edit_templates`` opens everything and saves, lints, previews, evaluates and submits;
``approve_templates`` approves, rejects and rolls back. Documents are addressed as
``/{kind}/{doc}``: ``scripts/<script id>``, ``blocks/<block file stem>``,
``languages/<pack file stem>`` or ``rulesets/default``.

Each action is one method of :class:`~bot.web.workspace.service.Workspace`; a page and its
``/api/v1`` twin call the same method and differ only in how they read the input (form or
JSON) and show the result (template or redirect, or a JSON model). A refusal
(:class:`WorkspaceError`) becomes the error page or an :class:`~bot.web.errors.ErrorOut`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from enum import Enum
from functools import wraps
from typing import Any, ParamSpec

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from pydantic import BaseModel, Field
from sqlmodel import Session

from bot.settings import Settings
from bot.web.deps import DB, Viewer, clock, require
from bot.web.errors import ErrorOut, ProblemOut, refusals
from bot.web.i18n import N_
from bot.web.i18n_catalog import problem_messages
from bot.web.pages import page_gettext, render
from bot.web.params import VersionNo
from bot.web.roles import Permission
from bot.web.workspace.approval import Actor
from bot.web.workspace.checks import Problem, Report, document_file
from bot.web.workspace.documents import KIND_LABELS, STATE_LABELS, Kind, Version, WorkspaceError
from bot.web.workspace.evaluation import Evaluation, persona_sets
from bot.web.workspace.preview import SAMPLE
from bot.web.workspace.service import Workspace, accounts

router = APIRouter()
API = "/api/v1/workspace"
TAG: list[str | Enum] = ["workspace"]
EDIT = Depends(require(Permission.EDIT_TEMPLATES))
APPROVE = Depends(require(Permission.APPROVE_TEMPLATES))
DEFAULT_SETS = ["public", "tuning"]
P = ParamSpec("P")


@dataclass(frozen=True)
class Desk:
    """What a workspace route works with: the request and the signed-in viewer (to render
    a page) and the workspace acting for that viewer."""

    request: Request
    who: Viewer
    ws: Workspace

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """The page in the viewer's language, with the workspace's vocabulary (version
        states, kinds of document, evaluation figures) for its templates to translate."""
        return render(
            self.request,
            name,
            self.who,
            status_code,
            states=STATE_LABELS,
            kinds=KIND_LABELS,
            figures=FIGURES,
            side=lambda label: side_label(label, self.gettext),
            **context,
        )

    @property
    def gettext(self) -> Callable[[str], str]:
        """The viewer's language, for messages made in Python."""
        return page_gettext(self.request)


def _desk(guard: Any) -> Any:
    """A dependency giving the :class:`Desk` of a viewer who passes ``guard`` (``EDIT``
    or ``APPROVE``): the same permission check and transaction as a route that asked for
    the viewer and the session itself."""

    def open_desk(request: Request, who: Viewer = guard, session: Session = DB) -> Desk:
        settings: Settings = request.app.state.settings
        actor = Actor(who.user_id, who.username)
        return Desk(request, who, Workspace(session, settings, clock(request), actor))

    return Depends(open_desk)


EDITING = _desk(EDIT)
APPROVING = _desk(APPROVE)


# -- API models ---------------------------------------------------------------------------


class CheckProblemOut(ProblemOut):
    """A problem of a document: ``message`` in English, ``template`` and ``params`` its
    message id and values (a value is text or ``{"template", "params"}``), for a client
    that shows it in another language; ``template`` is empty for a parser's own text."""

    template: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


def _problems(items: list[Problem]) -> list[CheckProblemOut]:
    return [CheckProblemOut(**p.as_json()) for p in items]


class VersionOut(BaseModel):
    kind: Kind
    doc: str
    version: int
    state: str
    digest: str
    author: str | None
    approved_by: str | None
    created_at: dt.datetime | None
    published_at: dt.datetime | None


class VersionDetailOut(VersionOut):
    source: str
    errors: list[CheckProblemOut]


class DocumentOut(BaseModel):
    kind: Kind
    doc: str
    published_version: int
    drafts: int
    pending: int
    versions: int


class SourceIn(BaseModel):
    source: str = Field(max_length=200_000)


class LintOut(BaseModel):
    ok: bool
    errors: list[CheckProblemOut]
    #: Sandbox escape attempts: a save of this text is refused.
    refused: list[CheckProblemOut]


class SavedOut(BaseModel):
    version: VersionOut
    #: Lint errors: saved, but they block submitting.
    errors: list[CheckProblemOut]


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class AccountOut(BaseModel):
    key: str
    name: str
    account_id: str
    phone: str
    scenario: str
    model_score: float


class PromptOut(BaseModel):
    node: str
    topic: str
    label: str
    after_identity: bool
    line: int | None
    #: The document it was written in (``blocks/identity_check.yaml``) and its editor
    #: at that line.
    file: str
    text: str
    error: str
    edit_url: str
    #: The script it was rendered in.
    script: str


class PreviewOut(BaseModel):
    script: str
    account: AccountOut
    prompts: list[PromptOut]
    problem: str


class EvaluateIn(BaseModel):
    sets: list[str] = Field(default_factory=lambda: list(DEFAULT_SETS))
    #: Only these persona ids (all of the sets when empty).
    personas: list[str] | None = None


class SideOut(BaseModel):
    label: str
    summary: dict[str, Any]
    personas: list[dict[str, Any]]


class EvaluationOut(BaseModel):
    sets: list[str]
    version: SideOut
    published: SideOut


class DiffLineOut(BaseModel):
    op: str
    text: str
    old_no: int | None
    new_no: int | None


class DiffOut(BaseModel):
    old: str
    new: str
    unified: str
    lines: list[DiffLineOut]


def _versions_out(ws: Workspace, versions: list[Version]) -> list[VersionOut]:
    """The versions with the usernames of their authors and approvers (one query)."""
    names = ws.names(versions)
    return [
        VersionOut(
            kind=v.kind,
            doc=v.doc,
            version=v.version,
            state=v.state,
            digest=v.digest,
            author=names.get(v.author_id) if v.author_id else None,
            approved_by=names.get(v.approved_by) if v.approved_by else None,
            created_at=v.created_at,
            published_at=v.published_at,
        )
        for v in versions
    ]


def _version_out(ws: Workspace, v: Version) -> VersionOut:
    return _versions_out(ws, [v])[0]


def _evaluation_out(found: Evaluation) -> EvaluationOut:
    return EvaluationOut(
        sets=found.sets,
        version=SideOut(**asdict(found.version)),
        published=SideOut(**asdict(found.published)),
    )


#: The evaluation's summary figures as its page names them (key, label, shown as a share).
FIGURES = (
    ("n", N_("Persona runs"), False),
    ("passed", N_("Passed"), False),
    ("outcome_accuracy", N_("Outcome accuracy"), True),
    ("risk_band_accuracy", N_("Risk band accuracy"), True),
    ("entity_recall", N_("Entity recall"), True),
)
_PUBLISHED_SIDE = re.compile(r"v(\d+) \(published\)")


def side_label(label: str, gettext: Callable[[str], str]) -> str:
    """An evaluation side's label (``v3``, ``v2 (published)``, stored with the result in
    English) in the page's language."""
    found = _PUBLISHED_SIDE.fullmatch(label)
    if found is None:
        return label
    return gettext("v%(version)s (published)") % {"version": found[1]}


REFUSALS = refusals(403, 404, 409, 413, 422)


def _route(
    method: str,
    url: str,
    refusal: Callable[[WorkspaceError, dict[str, Any]], Response],
    **options: Any,
) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """Register the decorated endpoint at ``url``; a :class:`WorkspaceError` it raises is
    answered by ``refusal(error, the endpoint's arguments)``.

    The refusal is *returned*, not raised: only then does the request's transaction
    (:func:`~bot.web.deps.db`) commit, and a refusal may have recorded audit events
    (``template_rejected``, ``self_approval_refused``) that must stay.
    """

    def register(endpoint: Callable[P, Any]) -> Callable[P, Any]:
        @wraps(endpoint)
        def answer(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                return endpoint(*args, **kwargs)
            except WorkspaceError as exc:
                return refusal(exc, kwargs)

        router.add_api_route(url, answer, methods=[method], **options)
        return answer

    return register


def _json_refusal(exc: WorkspaceError, _arguments: dict[str, Any]) -> Response:
    body = ErrorOut(detail=exc.message, problems=_problems(exc.problems))
    return JSONResponse(body.model_dump(), status_code=exc.status)


def _page_refusal(exc: WorkspaceError, arguments: dict[str, Any]) -> Response:
    """The error page. FastAPI passes every argument by keyword, so the page's
    :class:`Desk` is among them."""
    desk = next(a for a in arguments.values() if isinstance(a, Desk))
    return desk.render("error.html", exc.status, status=exc.status, message=exc.shown(desk.gettext))


def _api(
    method: str, path: str, model: Any, status_code: int | None = None
) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """An API route at ``/api/v1/workspace{path}`` answering ``model``, or a
    :class:`~bot.web.errors.ErrorOut` with the refusal's status."""
    return _route(
        method,
        API + path,
        _json_refusal,
        response_model=model,
        status_code=status_code,
        responses=REFUSALS,
        tags=TAG,
    )


def _page(method: str, path: str) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """A page at ``/workspace{path}`` (left out of the OpenAPI document), or the error
    page with the refusal's status."""
    return _route(
        method,
        "/workspace" + path,
        _page_refusal,
        response_class=HTMLResponse,
        include_in_schema=False,
    )


# -- API: documents and versions ------------------------------------------------------------


@router.get(f"{API}/documents", response_model=list[DocumentOut], tags=TAG)
def api_documents(desk: Desk = EDITING) -> list[DocumentOut]:
    """Every script and the rule set, with the published version and waiting versions."""
    return [DocumentOut(**asdict(d)) for d in desk.ws.overview()]


@_api("GET", "/{kind}/{doc}/versions", list[VersionOut])
def api_versions(kind: Kind, doc: str, desk: Desk = EDITING) -> Any:
    """Newest first; version 0 (the packaged file) last."""
    return _versions_out(desk.ws, desk.ws.versions(kind, doc))


@_api("GET", "/{kind}/{doc}/versions/{number}", VersionDetailOut)
def api_version(kind: Kind, doc: str, number: VersionNo, desk: Desk = EDITING) -> Any:
    """A version's source and its current lint errors."""
    found = desk.ws.version(kind, doc, number)
    out = _version_out(desk.ws, found.version)
    errors = _problems(found.report.problems)
    return VersionDetailOut(**out.model_dump(), source=found.source, errors=errors)


@_api("POST", "/{kind}/{doc}/lint", LintOut)
def api_lint(kind: Kind, doc: str, body: SourceIn, desk: Desk = EDITING) -> Any:
    """Check text without saving it (the editor calls this as one types)."""
    report = desk.ws.lint(kind, doc, body.source)
    return LintOut(ok=report.ok, errors=_problems(report.errors), refused=_problems(report.refused))


@_api("POST", "/{kind}/{doc}/versions", SavedOut, status_code=201)
def api_save(kind: Kind, doc: str, body: SourceIn, desk: Desk = EDITING) -> Any:
    """Save a draft. A sandbox escape attempt is refused (422, not stored, audited);
    lint errors are returned with the saved draft and block submitting."""
    version, report = desk.ws.save(kind, doc, body.source)
    return SavedOut(version=_version_out(desk.ws, version), errors=_problems(report.errors))


@_api("POST", "/{kind}/{doc}/versions/{number}/submit", VersionOut)
def api_submit(kind: Kind, doc: str, number: VersionNo, desk: Desk = EDITING) -> Any:
    """The author asks for approval; refused (422) while the version has errors."""
    return _version_out(desk.ws, desk.ws.submit(kind, doc, number))


@_api("POST", "/{kind}/{doc}/versions/{number}/approve", VersionOut)
def api_approve(kind: Kind, doc: str, number: VersionNo, desk: Desk = APPROVING) -> Any:
    """A second person approves: the version is published (403 for its author)."""
    return _version_out(desk.ws, desk.ws.approve(kind, doc, number))


@_api("POST", "/{kind}/{doc}/versions/{number}/rollback", VersionOut, status_code=201)
def api_rollback(kind: Kind, doc: str, number: VersionNo, desk: Desk = APPROVING) -> Any:
    """Copy a formerly published version into a new pending version (a second person
    approves it like any other)."""
    return _version_out(desk.ws, desk.ws.rollback(kind, doc, number))


@_api("POST", "/{kind}/{doc}/versions/{number}/reject", VersionOut)
def api_reject(
    kind: Kind, doc: str, number: VersionNo, body: ReasonIn, desk: Desk = APPROVING
) -> Any:
    # No docstring: it would become the operation's description in the OpenAPI document.
    return _version_out(desk.ws, desk.ws.reject(kind, doc, number, body.reason))


# -- API: preview, evaluation, diff -------------------------------------------------------


@router.get(f"{API}/accounts", response_model=list[AccountOut], tags=TAG)
def api_accounts(who: Viewer = EDIT) -> list[AccountOut]:
    """Accounts a preview can use: the built-in sample and the public personas (masked)."""
    return [AccountOut(**asdict(a)) for a in accounts()]


@_api("GET", "/{kind}/{doc}/versions/{number}/preview", PreviewOut)
def api_preview(
    kind: Kind, doc: str, number: VersionNo, account: str = Query(SAMPLE), desk: Desk = EDITING
) -> Any:
    """Every prompt of the version rendered for a sample account (masked), each with the
    document and line it was written on and a link to edit it there."""
    return PreviewOut.model_validate(asdict(desk.ws.preview(kind, doc, number, account).preview))


@_api("POST", "/{kind}/{doc}/versions/{number}/evaluate", EvaluationOut)
def api_evaluate(
    kind: Kind,
    doc: str,
    number: VersionNo,
    body: EvaluateIn | None = None,
    stream: bool = Query(False, description="answer progress as JSON lines (NDJSON)"),
    desk: Desk = EDITING,
) -> Any:
    """Run the personas through this version and through the published set (rules-only
    NLU); the result is kept with the version (audit event ``evaluate``). With
    ``stream=true`` the answer is one JSON line per persona run (``done``, ``total``,
    ``percent``) and a last one with ``finished: true`` once the result is stored."""
    body = body or EvaluateIn()
    if stream:
        steps = desk.ws.evaluate_steps(kind, doc, number, body.sets, body.personas)
        lines = (json.dumps(step) + "\n" for step in steps)
        return StreamingResponse(lines, media_type="application/x-ndjson")
    return _evaluation_out(desk.ws.evaluate(kind, doc, number, body.sets, body.personas))


@_api("GET", "/{kind}/{doc}/versions/{number}/evaluation", EvaluationOut)
def api_evaluation(kind: Kind, doc: str, number: VersionNo, desk: Desk = EDITING) -> Any:
    """The latest evaluation of this version (404 if it was never evaluated)."""
    _version, found = desk.ws.evaluation_of(kind, doc, number)
    if found is None:
        raise WorkspaceError(404, N_("not evaluated yet"))
    return _evaluation_out(found)


@_api("GET", "/{kind}/{doc}/versions/{number}/diff", DiffOut)
def api_diff(
    kind: Kind,
    doc: str,
    number: VersionNo,
    against: VersionNo | None = Query(None, description="the other version (default: published)"),
    desk: Desk = EDITING,
) -> Any:
    """Unified diff from ``against`` to this version."""
    found = desk.ws.diff(kind, doc, number, against)
    lines = [DiffLineOut(**asdict(d)) for d in found.lines]
    return DiffOut(old=found.old.ref, new=found.new.ref, unified=found.unified, lines=lines)


# -- pages ----------------------------------------------------------------------------------


def _to_version(v: Version) -> RedirectResponse:
    """After a form: to the page of the version it made or moved on."""
    url = f"/workspace/{v.kind.value}/{v.doc}/versions/{v.version}"
    return RedirectResponse(url, status_code=303)


def _source_lines(source: str, problems: list[Problem], file: str) -> list[dict[str, Any]]:
    """Each line of the document with the problems reported at it."""
    at: dict[int, list[Problem]] = {}
    for p in problems:
        if p.file == file and p.line:
            at.setdefault(p.line, []).append(p)
    return [
        {"no": i, "text": text, "problems": at.get(i, [])}
        for i, text in enumerate(source.splitlines() or [""], 1)
    ]


@_page("GET", "")
def page_index(desk: Desk = EDITING) -> Response:
    return desk.render("workspace.html", documents=desk.ws.overview(), running=desk.ws.running())


@_page("GET", "/{kind}/{doc}")
def page_document(kind: Kind, doc: str, desk: Desk = EDITING) -> Response:
    versions = desk.ws.versions(kind, doc)
    return desk.render(
        "workspace_document.html",
        kind=kind,
        doc=doc,
        versions=versions,
        names=desk.ws.names(versions),
        # looked up, not searched for in the list: that holds only the newest versions
        published=desk.ws.docs.published(kind, doc),
    )


def _editor(
    desk: Desk,
    kind: Kind,
    doc: str,
    source: str,
    base: int | None,
    report: Report,
    status: int = 200,
    message: str = "",
) -> HTMLResponse:
    return desk.render(
        "workspace_editor.html",
        status,
        kind=kind,
        doc=doc,
        source=source,
        base=base,
        file=report.file,
        problems=report.problems,
        refused_n=len(report.refused),
        problems_json=[p.as_json() | {"refused": True} for p in report.refused]
        + [p.as_json() | {"refused": False} for p in report.errors],
        # what the script needs to show the problems of a later lint in this language
        messages_json=_translated(problem_messages(), desk.gettext),
        message=message,
    )


def _translated(messages: Iterable[str], gettext: Callable[[str], str]) -> dict[str, str]:
    """Message id -> translation, for those that have one (none in English)."""
    return {m: t for m in messages if (t := gettext(m)) != m}


@_page("GET", "/{kind}/{doc}/edit")
def page_editor(
    kind: Kind,
    doc: str,
    base: VersionNo | None = Query(None, alias="from"),
    desk: Desk = EDITING,
) -> Response:
    found = desk.ws.version(kind, doc, base)
    return _editor(desk, kind, doc, found.source, found.version.version, found.report)


@_page("POST", "/{kind}/{doc}/versions")
def page_save(
    kind: Kind,
    doc: str,
    source: str = Form(...),
    base: VersionNo | None = Form(None),
    desk: Desk = EDITING,
) -> Response:
    """A refused text goes back into the editor (422, unsaved) with its refusals marked;
    any other refusal is the error page."""
    source = source.replace("\r\n", "\n")
    try:
        version, _report = desk.ws.save(kind, doc, source)
    except WorkspaceError as exc:
        if exc.status not in (409, 422):
            raise
        report = Report(document_file(kind, doc), refused=exc.problems)
        return _editor(desk, kind, doc, source, base, report, exc.status, exc.shown(desk.gettext))
    return _to_version(version)


@_page("GET", "/{kind}/{doc}/versions/{number}")
def page_version(kind: Kind, doc: str, number: VersionNo, desk: Desk = EDITING) -> Response:
    found = desk.ws.version(kind, doc, number)
    v, report = found.version, found.report
    return desk.render(
        "workspace_version.html",
        kind=kind,
        doc=doc,
        v=v,
        names=desk.ws.names([v]),
        lines=_source_lines(found.source, report.problems, report.file),
        problems=report.problems,
        file=report.file,
        evaluation=desk.ws.latest_evaluation(v),
        can_approve=desk.who.can(Permission.APPROVE_TEMPLATES),
        # what an approver is asked to publish: shown on the page itself
        diff=desk.ws.diff(kind, doc, number) if v.state in ("draft", "pending") else None,
    )


@_page("POST", "/{kind}/{doc}/versions/{number}/submit")
def page_submit(kind: Kind, doc: str, number: VersionNo, desk: Desk = EDITING) -> Response:
    return _to_version(desk.ws.submit(kind, doc, number))


@_page("POST", "/{kind}/{doc}/versions/{number}/approve")
def page_approve(kind: Kind, doc: str, number: VersionNo, desk: Desk = APPROVING) -> Response:
    return _to_version(desk.ws.approve(kind, doc, number))


@_page("POST", "/{kind}/{doc}/versions/{number}/reject")
def page_reject(
    kind: Kind, doc: str, number: VersionNo, reason: str = Form(""), desk: Desk = APPROVING
) -> Response:
    return _to_version(desk.ws.reject(kind, doc, number, reason))


@_page("POST", "/{kind}/{doc}/versions/{number}/rollback")
def page_rollback(kind: Kind, doc: str, number: VersionNo, desk: Desk = APPROVING) -> Response:
    return _to_version(desk.ws.rollback(kind, doc, number))


@_page("GET", "/{kind}/{doc}/versions/{number}/preview")
def page_preview(
    kind: Kind, doc: str, number: VersionNo, account: str = Query(SAMPLE), desk: Desk = EDITING
) -> Response:
    shown = desk.ws.preview(kind, doc, number, account)
    return desk.render(
        "workspace_preview.html", kind=kind, doc=doc, v=shown.version,
        preview=shown.preview, accounts=accounts(),
    )  # fmt: skip


@_page("GET", "/{kind}/{doc}/versions/{number}/diff")
def page_diff(
    kind: Kind,
    doc: str,
    number: VersionNo,
    against: VersionNo | None = Query(None),
    desk: Desk = EDITING,
) -> Response:
    found = desk.ws.diff(kind, doc, number, against)
    return desk.render(
        "workspace_diff.html", kind=kind, doc=doc, old=found.old, new=found.new, diff=found,
        versions=desk.ws.versions(kind, doc),
    )  # fmt: skip


@_page("GET", "/{kind}/{doc}/versions/{number}/evaluation")
def page_evaluation(kind: Kind, doc: str, number: VersionNo, desk: Desk = EDITING) -> Response:
    v, found = desk.ws.evaluation_of(kind, doc, number)
    return desk.render(
        "workspace_evaluation.html", kind=kind, doc=doc, v=v, found=found, sets=persona_sets()
    )


@_page("POST", "/{kind}/{doc}/versions/{number}/evaluate")
def page_evaluate(
    kind: Kind,
    doc: str,
    number: VersionNo,
    sets: list[str] | None = Form(None),
    desk: Desk = EDITING,
) -> Response:
    desk.ws.evaluate(kind, doc, number, sets or list(DEFAULT_SETS), None)
    url = f"/workspace/{kind.value}/{doc}/versions/{number}/evaluation"
    return RedirectResponse(url, status_code=303)
