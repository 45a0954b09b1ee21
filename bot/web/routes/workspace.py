"""The compliance workspace: pages and JSON API to edit scripts and the rule set, lint
them as one types, preview prompts, evaluate on personas, compare versions, and publish
under four eyes (see :mod:`bot.web.workspace`).

``edit_templates`` opens everything and saves, lints, previews, evaluates and submits;
``approve_templates`` approves, rejects and rolls back. Documents are addressed as
``/{kind}/{doc}``: ``scripts/<script id>`` or ``rulesets/default``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from bot.settings import Settings
from bot.web.deps import Viewer, clock, db, require
from bot.web.pages import render
from bot.web.roles import Permission
from bot.web.workspace import evaluation
from bot.web.workspace.approval import Actor, Workflow
from bot.web.workspace.checks import Problem, Report, document_file
from bot.web.workspace.diff import diff_lines, unified
from bot.web.workspace.documents import Documents, Kind, State, Version, WorkspaceError
from bot.web.workspace.preview import SAMPLE, account_view, preview, sample_accounts

router = APIRouter()
API = "/api/v1/workspace"
TAG: list[str | Enum] = ["workspace"]
EDIT = Depends(require(Permission.EDIT_TEMPLATES))
APPROVE = Depends(require(Permission.APPROVE_TEMPLATES))
DEFAULT_SETS = ["public", "tuning"]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _flow(request: Request, session: Session) -> Workflow:
    return Workflow(session, _settings(request), clock(request))


def _actor(who: Viewer) -> Actor:
    return Actor(who.user_id, who.username)


# -- API models ---------------------------------------------------------------------------


class ProblemOut(BaseModel):
    file: str
    line: int | None
    field: str
    message: str


def _problems(items: list[Problem]) -> list[ProblemOut]:
    return [ProblemOut(**asdict(p)) for p in items]


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
    errors: list[ProblemOut]


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
    errors: list[ProblemOut]
    #: Sandbox escape attempts: a save of this text is refused.
    refused: list[ProblemOut]


class SavedOut(BaseModel):
    version: VersionOut
    #: Lint errors: saved, but they block submitting.
    errors: list[ProblemOut]


class RefusalOut(BaseModel):
    detail: str
    problems: list[ProblemOut]


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
    file: str
    text: str
    error: str


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


def _version_out(v: Version, names: dict[int, str]) -> VersionOut:
    return VersionOut(
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


def _names(docs: Documents, versions: list[Version]) -> dict[int, str]:
    return docs.usernames({x for v in versions for x in (v.author_id, v.approved_by)})


def _api_error(exc: WorkspaceError) -> JSONResponse:
    body = RefusalOut(detail=exc.message, problems=_problems(exc.problems))
    return JSONResponse(body.model_dump(), status_code=exc.status)


REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": RefusalOut} for code in (403, 404, 409, 413, 422)
}


# -- API: documents and versions ------------------------------------------------------------


@router.get(f"{API}/documents", response_model=list[DocumentOut], tags=TAG)
def api_documents(
    request: Request, who: Viewer = EDIT, session: Session = Depends(db)
) -> list[DocumentOut]:
    """Every script and the rule set, with the published version and waiting versions."""
    docs = Documents(session, _settings(request))
    return [DocumentOut(**asdict(d)) for d in docs.overview()]


@router.get(
    f"{API}/{{kind}}/{{doc}}/versions",
    response_model=list[VersionOut],
    responses=REFUSALS,
    tags=TAG,
)
def api_versions(
    request: Request, kind: Kind, doc: str, who: Viewer = EDIT, session: Session = Depends(db)
) -> Any:
    """Newest first; version 0 (the packaged file) last."""
    docs = Documents(session, _settings(request))
    try:
        versions = docs.versions(kind, doc)
    except WorkspaceError as exc:
        return _api_error(exc)
    names = _names(docs, versions)
    return [_version_out(v, names) for v in versions]


@router.get(
    f"{API}/{{kind}}/{{doc}}/versions/{{number}}",
    response_model=VersionDetailOut,
    responses=REFUSALS,
    tags=TAG,
)
def api_version(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Any:
    """A version's source and its current lint errors."""
    flow = _flow(request, session)
    try:
        v = flow.docs.get(kind, doc, number)
    except WorkspaceError as exc:
        return _api_error(exc)
    assert v.source is not None
    report = flow.check(kind, doc, v.source)
    out = _version_out(v, _names(flow.docs, [v]))
    return VersionDetailOut(
        **out.model_dump(), source=v.source, errors=_problems(report.refused + report.errors)
    )


@router.post(f"{API}/{{kind}}/{{doc}}/lint", response_model=LintOut, responses=REFUSALS, tags=TAG)
def api_lint(
    request: Request,
    kind: Kind,
    doc: str,
    body: SourceIn,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Any:
    """Check text without saving it (the editor calls this as one types)."""
    try:
        report = _flow(request, session).lint(_actor(who), kind, doc, body.source)
    except WorkspaceError as exc:
        return _api_error(exc)
    return LintOut(ok=report.ok, errors=_problems(report.errors), refused=_problems(report.refused))


@router.post(
    f"{API}/{{kind}}/{{doc}}/versions",
    response_model=SavedOut,
    status_code=201,
    responses=REFUSALS,
    tags=TAG,
)
def api_save(
    request: Request,
    kind: Kind,
    doc: str,
    body: SourceIn,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Any:
    """Save a draft. A sandbox escape attempt is refused (422, not stored, audited);
    lint errors are returned with the saved draft and block submitting."""
    flow = _flow(request, session)
    try:
        version, report = flow.save(_actor(who), kind, doc, body.source)
    except WorkspaceError as exc:
        return _api_error(exc)
    return SavedOut(
        version=_version_out(version, _names(flow.docs, [version])),
        errors=_problems(report.errors),
    )


def _transition(
    request: Request, session: Session, who: Viewer, action: str, kind: Kind, doc: str, n: int
) -> Version:
    flow = _flow(request, session)
    actor = _actor(who)
    if action == "submit":
        return flow.submit(actor, kind, doc, n)
    if action == "approve":
        return flow.approve(actor, kind, doc, n)
    return flow.rollback(actor, kind, doc, n)


def _transition_api(
    request: Request, session: Session, who: Viewer, action: str, kind: Kind, doc: str, n: int
) -> Any:
    try:
        v = _transition(request, session, who, action, kind, doc, n)
    except WorkspaceError as exc:
        return _api_error(exc)
    return _version_out(v, _names(Documents(session, _settings(request)), [v]))


@router.post(
    f"{API}/{{kind}}/{{doc}}/versions/{{number}}/submit",
    response_model=VersionOut,
    responses=REFUSALS,
    tags=TAG,
)
def api_submit(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Any:
    """The author asks for approval; refused (422) while the version has errors."""
    return _transition_api(request, session, who, "submit", kind, doc, number)


@router.post(
    f"{API}/{{kind}}/{{doc}}/versions/{{number}}/approve",
    response_model=VersionOut,
    responses=REFUSALS,
    tags=TAG,
)
def api_approve(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = APPROVE,
    session: Session = Depends(db),
) -> Any:
    """A second person approves: the version is published (403 for its author)."""
    return _transition_api(request, session, who, "approve", kind, doc, number)


@router.post(
    f"{API}/{{kind}}/{{doc}}/versions/{{number}}/rollback",
    response_model=VersionOut,
    status_code=201,
    responses=REFUSALS,
    tags=TAG,
)
def api_rollback(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = APPROVE,
    session: Session = Depends(db),
) -> Any:
    """Copy a formerly published version into a new pending version (a second person
    approves it like any other)."""
    return _transition_api(request, session, who, "rollback", kind, doc, number)


@router.post(
    f"{API}/{{kind}}/{{doc}}/versions/{{number}}/reject",
    response_model=VersionOut,
    responses=REFUSALS,
    tags=TAG,
)
def api_reject(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    body: ReasonIn,
    who: Viewer = APPROVE,
    session: Session = Depends(db),
) -> Any:
    flow = _flow(request, session)
    try:
        v = flow.reject(_actor(who), kind, doc, number, body.reason)
    except WorkspaceError as exc:
        return _api_error(exc)
    return _version_out(v, _names(flow.docs, [v]))


# -- API: preview, evaluation, diff -------------------------------------------------------


@router.get(f"{API}/accounts", response_model=list[AccountOut], tags=TAG)
def api_accounts(who: Viewer = EDIT) -> list[AccountOut]:
    """Accounts a preview can use: the built-in sample and the public personas (masked)."""
    return [AccountOut(**asdict(account_view(k, a))) for k, a in sample_accounts().items()]


def _preview(
    request: Request, session: Session, doc: str, number: int, account: str
) -> tuple[Version, Any]:
    flow = _flow(request, session)
    v = flow.docs.get(Kind.SCRIPTS, doc, number)
    assert v.source is not None
    try:
        return v, preview(_settings(request), flow.docs.published_set(), doc, v.source, account)
    except KeyError:
        raise WorkspaceError(404, f"no sample account '{account}'") from None


@router.get(
    f"{API}/scripts/{{doc}}/versions/{{number}}/preview",
    response_model=PreviewOut,
    responses=REFUSALS,
    tags=TAG,
)
def api_preview(
    request: Request,
    doc: str,
    number: int,
    account: str = Query(SAMPLE),
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Any:
    """Every prompt of the version rendered for a sample account (masked)."""
    try:
        _v, shown = _preview(request, session, doc, number, account)
    except WorkspaceError as exc:
        return _api_error(exc)
    return PreviewOut.model_validate(asdict(shown))


def _evaluate(
    request: Request, session: Session, who: Viewer, kind: Kind, doc: str, n: int, body: EvaluateIn
) -> EvaluationOut:
    flow = _flow(request, session)
    v = flow.docs.get(kind, doc, n)
    mine, theirs = evaluation.evaluate(
        _settings(request),
        flow.docs.published_set(),
        v,
        flow.docs.published(kind, doc),
        body.sets,
        body.personas,
    )
    evaluation.store(session, who.username, v, body.sets, mine, theirs)
    return EvaluationOut(
        sets=body.sets,
        version=SideOut(**asdict(mine)),
        published=SideOut(**asdict(theirs)),
    )


@router.post(
    f"{API}/{{kind}}/{{doc}}/versions/{{number}}/evaluate",
    response_model=EvaluationOut,
    responses=REFUSALS,
    tags=TAG,
)
def api_evaluate(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    body: EvaluateIn | None = None,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Any:
    """Run the personas through this version and through the published set (rules-only
    NLU); the result is kept with the version (audit event ``evaluate``)."""
    try:
        return _evaluate(request, session, who, kind, doc, number, body or EvaluateIn())
    except WorkspaceError as exc:
        return _api_error(exc)


@router.get(
    f"{API}/{{kind}}/{{doc}}/versions/{{number}}/evaluation",
    response_model=EvaluationOut,
    responses=REFUSALS,
    tags=TAG,
)
def api_evaluation(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Any:
    """The latest evaluation of this version (404 if it was never evaluated)."""
    try:
        v = Documents(session, _settings(request)).get(kind, doc, number)
        found = evaluation.latest(session, v)
        if found is None:
            raise WorkspaceError(404, "not evaluated yet")
    except WorkspaceError as exc:
        return _api_error(exc)
    mine, theirs, sets = found
    return EvaluationOut(
        sets=sets, version=SideOut(**asdict(mine)), published=SideOut(**asdict(theirs))
    )


def _diff(
    request: Request, session: Session, kind: Kind, doc: str, n: int, against: int | None
) -> tuple[Version, Version, DiffOut]:
    docs = Documents(session, _settings(request))
    new = docs.get(kind, doc, n)
    old = docs.published(kind, doc) if against is None else docs.get(kind, doc, against)
    assert new.source is not None and old.source is not None
    out = DiffOut(
        old=old.ref,
        new=new.ref,
        unified=unified(old.source, new.source, old.ref, new.ref),
        lines=[DiffLineOut(**asdict(d)) for d in diff_lines(old.source, new.source)],
    )
    return old, new, out


@router.get(
    f"{API}/{{kind}}/{{doc}}/versions/{{number}}/diff",
    response_model=DiffOut,
    responses=REFUSALS,
    tags=TAG,
)
def api_diff(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    against: int | None = Query(None, description="the other version (default: published)"),
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Any:
    """Unified diff from ``against`` to this version."""
    try:
        return _diff(request, session, kind, doc, number, against)[2]
    except WorkspaceError as exc:
        return _api_error(exc)


# -- pages ----------------------------------------------------------------------------------


def _page_error(request: Request, who: Viewer, exc: WorkspaceError) -> HTMLResponse:
    return render(request, "error.html", who, exc.status, status=exc.status, message=exc.message)


def _doc_url(kind: Kind, doc: str) -> str:
    return f"/workspace/{kind.value}/{doc}"


def _source_lines(source: str, problems: list[Problem], file: str) -> list[dict[str, Any]]:
    """Each line of the document with the problems reported at it."""
    at: dict[int, list[str]] = {}
    for p in problems:
        if p.file == file and p.line:
            at.setdefault(p.line, []).append(p.message)
    return [
        {"no": i, "text": text, "problems": at.get(i, [])}
        for i, text in enumerate(source.splitlines() or [""], 1)
    ]


@router.get("/workspace", response_class=HTMLResponse, include_in_schema=False)
def page_index(request: Request, who: Viewer = EDIT, session: Session = Depends(db)) -> Response:
    docs = Documents(session, _settings(request))
    source = getattr(_settings(request), "templates_source", "files")
    return render(request, "workspace.html", who, documents=docs.overview(), source=source)


@router.get("/workspace/{kind}/{doc}", response_class=HTMLResponse, include_in_schema=False)
def page_document(
    request: Request, kind: Kind, doc: str, who: Viewer = EDIT, session: Session = Depends(db)
) -> Response:
    docs = Documents(session, _settings(request))
    try:
        versions = docs.versions(kind, doc)
    except WorkspaceError as exc:
        return _page_error(request, who, exc)
    return render(
        request,
        "workspace_document.html",
        who,
        kind=kind,
        doc=doc,
        versions=versions,
        names=_names(docs, versions),
        published=next(v for v in versions if v.state == State.PUBLISHED),
    )


def _editor(
    request: Request,
    who: Viewer,
    kind: Kind,
    doc: str,
    source: str,
    base: int | None,
    report: Report,
    status: int = 200,
    message: str = "",
) -> HTMLResponse:
    problems = report.refused + report.errors
    return render(
        request,
        "workspace_editor.html",
        who,
        status,
        kind=kind,
        doc=doc,
        source=source,
        base=base,
        file=report.file,
        problems=problems,
        refused_n=len(report.refused),
        problems_json=[asdict(p) | {"refused": True} for p in report.refused]
        + [asdict(p) | {"refused": False} for p in report.errors],
        message=message,
    )


@router.get("/workspace/{kind}/{doc}/edit", response_class=HTMLResponse, include_in_schema=False)
def page_editor(
    request: Request,
    kind: Kind,
    doc: str,
    base: int | None = Query(None, alias="from"),
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Response:
    flow = _flow(request, session)
    try:
        v = flow.docs.published(kind, doc) if base is None else flow.docs.get(kind, doc, base)
    except WorkspaceError as exc:
        return _page_error(request, who, exc)
    assert v.source is not None
    return _editor(request, who, kind, doc, v.source, v.version, flow.check(kind, doc, v.source))


@router.post("/workspace/{kind}/{doc}/versions", include_in_schema=False)
def page_save(
    request: Request,
    kind: Kind,
    doc: str,
    source: str = Form(...),
    base: int | None = Form(None),
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Response:
    flow = _flow(request, session)
    source = source.replace("\r\n", "\n")
    try:
        version, _report = flow.save(_actor(who), kind, doc, source)
    except WorkspaceError as exc:
        if exc.status != 422:
            return _page_error(request, who, exc)
        report = Report(document_file(kind, doc), refused=exc.problems)
        return _editor(request, who, kind, doc, source, base, report, 422, exc.message)
    return RedirectResponse(f"{_doc_url(kind, doc)}/versions/{version.version}", status_code=303)


@router.get(
    "/workspace/{kind}/{doc}/versions/{number}",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def page_version(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Response:
    flow = _flow(request, session)
    try:
        v = flow.docs.get(kind, doc, number)
    except WorkspaceError as exc:
        return _page_error(request, who, exc)
    assert v.source is not None
    report = flow.check(kind, doc, v.source)
    problems = report.refused + report.errors
    found = evaluation.latest(session, v)
    return render(
        request,
        "workspace_version.html",
        who,
        kind=kind,
        doc=doc,
        v=v,
        names=_names(flow.docs, [v]),
        lines=_source_lines(v.source, problems, report.file),
        problems=problems,
        file=report.file,
        evaluation=found,
        can_approve=who.can(Permission.APPROVE_TEMPLATES),
    )


def _page_transition(
    request: Request,
    session: Session,
    who: Viewer,
    action: str,
    kind: Kind,
    doc: str,
    number: int,
    reason: str = "",
) -> Response:
    try:
        if action == "reject":
            v = _flow(request, session).reject(_actor(who), kind, doc, number, reason)
        else:
            v = _transition(request, session, who, action, kind, doc, number)
    except WorkspaceError as exc:
        return _page_error(request, who, exc)
    return RedirectResponse(f"{_doc_url(kind, doc)}/versions/{v.version}", status_code=303)


@router.post("/workspace/{kind}/{doc}/versions/{number}/submit", include_in_schema=False)
def page_submit(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Response:
    return _page_transition(request, session, who, "submit", kind, doc, number)


@router.post("/workspace/{kind}/{doc}/versions/{number}/approve", include_in_schema=False)
def page_approve(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = APPROVE,
    session: Session = Depends(db),
) -> Response:
    return _page_transition(request, session, who, "approve", kind, doc, number)


@router.post("/workspace/{kind}/{doc}/versions/{number}/reject", include_in_schema=False)
def page_reject(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    reason: str = Form(""),
    who: Viewer = APPROVE,
    session: Session = Depends(db),
) -> Response:
    return _page_transition(request, session, who, "reject", kind, doc, number, reason)


@router.post("/workspace/{kind}/{doc}/versions/{number}/rollback", include_in_schema=False)
def page_rollback(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = APPROVE,
    session: Session = Depends(db),
) -> Response:
    return _page_transition(request, session, who, "rollback", kind, doc, number)


@router.get(
    "/workspace/scripts/{doc}/versions/{number}/preview",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def page_preview(
    request: Request,
    doc: str,
    number: int,
    account: str = Query(SAMPLE),
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Response:
    try:
        v, shown = _preview(request, session, doc, number, account)
    except WorkspaceError as exc:
        return _page_error(request, who, exc)
    accounts = [account_view(k, a) for k, a in sample_accounts().items()]
    return render(
        request, "workspace_preview.html", who, kind=Kind.SCRIPTS, doc=doc, v=v,
        preview=shown, accounts=accounts,
    )  # fmt: skip


@router.get(
    "/workspace/{kind}/{doc}/versions/{number}/diff",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def page_diff(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    against: int | None = Query(None),
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Response:
    try:
        old, new, out = _diff(request, session, kind, doc, number, against)
        versions = Documents(session, _settings(request)).versions(kind, doc)
    except WorkspaceError as exc:
        return _page_error(request, who, exc)
    return render(
        request, "workspace_diff.html", who, kind=kind, doc=doc, old=old, new=new, diff=out,
        versions=versions,
    )  # fmt: skip


@router.get(
    "/workspace/{kind}/{doc}/versions/{number}/evaluation",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def page_evaluation(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Response:
    try:
        v = Documents(session, _settings(request)).get(kind, doc, number)
    except WorkspaceError as exc:
        return _page_error(request, who, exc)
    return render(
        request, "workspace_evaluation.html", who, kind=kind, doc=doc, v=v,
        found=evaluation.latest(session, v), sets=evaluation.persona_sets(),
    )  # fmt: skip


@router.post("/workspace/{kind}/{doc}/versions/{number}/evaluate", include_in_schema=False)
def page_evaluate(
    request: Request,
    kind: Kind,
    doc: str,
    number: int,
    sets: list[str] | None = Form(None),
    who: Viewer = EDIT,
    session: Session = Depends(db),
) -> Response:
    try:
        body = EvaluateIn(sets=sets or list(DEFAULT_SETS))
        _evaluate(request, session, who, kind, doc, number, body)
    except WorkspaceError as exc:
        return _page_error(request, who, exc)
    url = f"{_doc_url(kind, doc)}/versions/{number}/evaluation"
    return RedirectResponse(url, status_code=303)
