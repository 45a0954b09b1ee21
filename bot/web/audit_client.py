"""A route dependency that records the client's address on the audit events the request
adds (:mod:`bot.web.audit`): ``APIRouter(dependencies=[Depends(remember_client)])``."""

from __future__ import annotations

from fastapi import Request
from sqlmodel import Session

from bot.web.audit import note_client
from bot.web.deps import DB


async def remember_client(request: Request, session: Session = DB) -> None:
    note_client(session, request.client.host if request.client else None)
