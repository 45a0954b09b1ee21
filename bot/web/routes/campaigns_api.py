"""The campaign API: what ``bot campaign`` does, for machines and scripts (docs/api.md).

Create a campaign, load its accounts from an uploaded file (the importer of ``bot campaign
import``: the same validation, the same line-numbered rejects, as JSON), start, pause,
resume and cancel it, read its status, and add to the do-not-call list. Reading needs
``view_monitor``, changing ``run_campaigns`` (supervisors and admins).
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, col, select

from bot.campaign import control, dnc
from bot.campaign.formats import FileFormat
from bot.campaign.importer import CampaignClosed, ImportFailed, import_file
from bot.core.masking import mask_phone
from bot.store.models import CampaignRow, DncEntryRow
from bot.web.audit import audit
from bot.web.deps import DB, Viewer, engine_of, require, web_settings
from bot.web.errors import refusals
from bot.web.params import DbId, PageNo
from bot.web.roles import Permission

router = APIRouter(tags=["campaigns"])
MAY_VIEW = require(Permission.VIEW_MONITOR)
MAY_RUN = require(Permission.RUN_CAMPAIGNS)
#: The largest account file accepted (about a million rows of a typical list).
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
#: Rejected rows listed in an import's answer; the rest are counted.
SHOWN_REJECTS = 1000
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
ACCOUNTS_FILE = File(..., description="Accounts: .csv, .jsonl or .ndjson")


# -- models -----------------------------------------------------------------------------


class CampaignIn(BaseModel):
    """A new campaign; every field but the name has the CLI's default."""

    name: str = Field(min_length=1, max_length=100)
    max_attempts: int = Field(3, ge=1, le=20)
    backoff_minutes: list[Annotated[int, Field(ge=0, le=10080)]] = Field(
        default_factory=lambda: [30, 120], max_length=20, description="Wait before attempt 2, 3..."
    )
    window_start: str = Field("09:00", pattern=_HHMM, description="Callee's local time")
    window_end: str = Field("20:00", pattern=_HHMM + "|^24:00$")
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5], min_length=1, max_length=7
    )
    holidays: list[dt.date] = Field(default_factory=list, max_length=400)
    max_concurrency: int = Field(10, ge=1, le=1000)

    @model_validator(mode="after")
    def _window(self) -> CampaignIn:
        if self.window_end != "24:00" and self.window_start >= self.window_end:
            raise ValueError("window_start must be before window_end")
        return self


class CampaignOut(BaseModel):
    id: int
    name: str
    state: str = Field(description="draft | running | paused | cancelled | completed")
    max_attempts: int
    backoff_minutes: list[int]
    window_start: str
    window_end: str
    weekdays: list[int]
    holidays: list[str]
    max_concurrency: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class StatusOut(BaseModel):
    id: int
    name: str
    state: str
    items: dict[str, int] = Field(description="Work items by state (queued, done...)")
    calls: int = Field(description="Calls with an outcome")
    outcomes: dict[str, int]
    dispositions: dict[str, int]
    connect_rate: float | None
    avg_duration_s: float | None


class RejectOut(BaseModel):
    line: int = Field(description="Line of the file where the record starts")
    field: str
    reason: str = Field(description="Why, with numbers masked")


class ImportOut(BaseModel):
    campaign: str
    encoding: str
    read: int
    loaded: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    items_created: int
    dnc_skipped: int
    rejects: list[RejectOut] = Field(description=f"The first {SHOWN_REJECTS} problems")


class Command(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


class DncIn(BaseModel):
    phone: str = Field(min_length=1, max_length=40, description="Any format; CN by default")
    reason: str = Field("", max_length=200)


class DncOut(BaseModel):
    id: int
    phone: str = Field(description="Masked")
    reason: str
    added_at: dt.datetime


class DncPageOut(BaseModel):
    total: int
    page: int
    entries: list[DncOut]


# -- helpers ----------------------------------------------------------------------------


def _campaign(session: Session, campaign_id: int) -> CampaignRow:
    found = session.get(CampaignRow, campaign_id)
    if found is None:
        raise HTTPException(404, f"no campaign {campaign_id}")
    return found


def _out(c: CampaignRow) -> CampaignOut:
    assert c.id is not None
    return CampaignOut(
        id=c.id, name=c.name, state=c.state, max_attempts=c.max_attempts,
        backoff_minutes=c.backoff_minutes, window_start=c.window_start, window_end=c.window_end,
        weekdays=c.weekdays, holidays=c.holidays, max_concurrency=c.max_concurrency,
        created_at=c.created_at, started_at=c.started_at, finished_at=c.finished_at,
    )  # fmt: skip


def _status(session: Session, c: CampaignRow) -> StatusOut:
    st = control.status_of(session, c)
    assert c.id is not None
    return StatusOut(
        id=c.id, name=st.name, state=st.state, items=st.items, calls=st.calls,
        outcomes=st.outcomes, dispositions=st.dispositions, connect_rate=st.connect_rate,
        avg_duration_s=st.avg_duration_s,
    )  # fmt: skip


def _upload_name(upload: UploadFile, fmt: FileFormat | None) -> str:
    """A safe local name for the upload: its own name's characters that are harmless,
    with an extension the importer reads (from ``fmt`` if given)."""
    given = Path(upload.filename or "").name
    stem = _SAFE_NAME.sub("_", Path(given).stem)[:60] or "upload"
    suffix = Path(given).suffix.lower()
    if fmt is not None:
        suffix = f".{fmt.value}"
    elif suffix not in (".csv", ".jsonl", ".ndjson"):
        raise HTTPException(422, "pass format=csv|jsonl, or upload a .csv, .jsonl or .ndjson file")
    return stem + suffix


def _save(upload: UploadFile, target: Path) -> None:
    copied = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            copied += len(chunk)
            if copied > MAX_UPLOAD_BYTES:
                raise HTTPException(413, f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
            out.write(chunk)


# -- campaigns --------------------------------------------------------------------------


@router.get("/api/v1/campaigns", response_model=list[CampaignOut])
def api_campaigns(_who: Viewer = Depends(MAY_VIEW), session: Session = DB) -> list[CampaignOut]:
    """Every campaign, newest first."""
    query = select(CampaignRow).order_by(col(CampaignRow.created_at).desc(), col(CampaignRow.id))
    return [_out(c) for c in session.exec(query)]


@router.post(
    "/api/v1/campaigns", response_model=CampaignOut, status_code=201, responses=refusals(409)
)
def api_create_campaign(
    body: CampaignIn, who: Viewer = Depends(MAY_RUN), session: Session = DB
) -> CampaignOut:
    """Create a campaign (a draft: load accounts, then start it)."""
    row = CampaignRow(
        **body.model_dump(exclude={"holidays"}), holidays=[d.isoformat() for d in body.holidays]
    )
    try:
        control.create(session, row)
    except control.CampaignError as exc:
        session.rollback()
        raise HTTPException(409, str(exc)) from None
    audit(session, who.username, "campaign_created", "campaign", row.id or "", name=row.name)
    return _out(row)


@router.get("/api/v1/campaigns/{campaign_id}", response_model=StatusOut, responses=refusals(404))
def api_campaign_status(
    campaign_id: DbId, _who: Viewer = Depends(MAY_VIEW), session: Session = DB
) -> StatusOut:
    """Work items by state, calls, outcomes, dispositions, connect rate, call length
    (``bot campaign status``)."""
    return _status(session, _campaign(session, campaign_id))


@router.post(
    "/api/v1/campaigns/{campaign_id}/accounts",
    response_model=ImportOut,
    responses=refusals(404, 409, 413),
)
def api_import_accounts(
    request: Request,
    campaign_id: DbId,
    file: UploadFile = ACCOUNTS_FILE,
    format: FileFormat | None = Form(None, description="Default: by the file's extension"),
    encoding: str | None = Form(
        None, max_length=40, description="e.g. gb18030 (default: detected)"
    ),
    who: Viewer = Depends(MAY_RUN),
    session: Session = DB,
) -> ImportOut:
    """Validate the file and load its good rows (``bot campaign import``): accounts are
    upserted by account_id, re-uploading is safe. Rejected rows come back with their
    line numbers; a file that cannot be read at all is a 400, a cancelled campaign 409."""
    name = _campaign(session, campaign_id).name
    # The importer commits batch by batch on its own connections: this request's
    # transaction ends first, so that it holds no lock the importer would wait on.
    session.commit()
    with tempfile.TemporaryDirectory(prefix="bot-upload-") as folder:
        path = Path(folder) / _upload_name(file, format)
        _save(file, path)
        try:
            report = import_file(
                engine_of(request), path, name, fmt=format.value if format else None,
                encoding=encoding or None,
            )  # fmt: skip
        except CampaignClosed as exc:
            raise HTTPException(409, str(exc)) from None
        except ImportFailed as exc:
            raise HTTPException(400, str(exc)) from None
    audit(
        session, who.username, "accounts_imported", "campaign", campaign_id,
        read=report.read, loaded=report.loaded, rejected=report.rejected,
    )  # fmt: skip
    return ImportOut(
        campaign=report.campaign, encoding=report.encoding, read=report.read,
        loaded=report.loaded, inserted=report.inserted, updated=report.updated,
        unchanged=report.unchanged, rejected=report.rejected,
        items_created=report.items_created, dnc_skipped=report.dnc_skipped,
        rejects=[
            RejectOut(line=e.line, field=e.field, reason=e.reason)
            for e in report.errors[:SHOWN_REJECTS]
        ],
    )  # fmt: skip


@router.post(
    "/api/v1/campaigns/{campaign_id}/{command}",
    response_model=StatusOut,
    responses=refusals(404, 409),
)
def api_campaign_command(
    campaign_id: DbId, command: Command, who: Viewer = Depends(MAY_RUN), session: Session = DB
) -> StatusOut:
    """Start (workers pick it up), pause (calls in progress finish), resume, or cancel
    it (queued accounts are not called): ``bot campaign start|pause|resume|cancel``."""
    campaign = _campaign(session, campaign_id)
    before = campaign.state
    try:
        control.apply(session, campaign, command.value)
    except control.CampaignError as exc:
        raise HTTPException(409, str(exc)) from None
    audit(
        session, who.username, f"campaign_{command.value}", "campaign", campaign_id,
        name=campaign.name, before=before, after=campaign.state,
    )  # fmt: skip
    session.flush()
    return _status(session, campaign)


# -- do-not-call ------------------------------------------------------------------------


def _dnc_out(e: DncEntryRow) -> DncOut:
    assert e.id is not None
    return DncOut(id=e.id, phone=mask_phone(e.phone_e164), reason=e.reason, added_at=e.added_at)


@router.get("/api/v1/dnc", response_model=DncPageOut)
def api_dnc(
    request: Request,
    page: PageNo = 1,
    _who: Viewer = Depends(MAY_RUN),
    session: Session = DB,
) -> DncPageOut:
    """The do-not-call list, newest first, numbers masked."""
    size = web_settings(request).page_size
    rows, total = dnc.entries(session, (page - 1) * size, size)
    return DncPageOut(total=total, page=page, entries=[_dnc_out(e) for e in rows])


@router.post("/api/v1/dnc", response_model=DncOut, status_code=201)
def api_add_dnc(body: DncIn, who: Viewer = Depends(MAY_RUN), session: Session = DB) -> DncOut:
    """Add a number (``bot campaign dnc``): queued calls to it are cancelled when a worker
    reaches them, and imports create its work items cancelled. Listing a number twice
    keeps the first entry. A number that is not one is a 422."""
    try:
        entry, new = dnc.add(session, body.phone, body.reason)
    except dnc.NotAPhoneNumber as exc:
        raise HTTPException(422, str(exc)) from None
    if new:
        audit(session, who.username, "dnc_added", "dnc_entry", entry.id or "", reason=body.reason)
    return _dnc_out(entry)
