"""Viewing one call and revealing its personal data: the loading, checks and audit events
that the call pages, the review item page and the JSON API share. The routes
(:mod:`bot.web.routes.calls`) differ only in how they parse the request and render.

Callee and reviewer text is stored masked; a reveal also opens the call's sealed
originals (:mod:`bot.store.pii`) and puts them into the rows it shows, which are detached
from the session first so that nothing unmasked is written back."""

from __future__ import annotations

from fastapi import HTTPException
from sqlmodel import Session

from bot.store.pii import open_call, restore
from bot.store.pii_crypto import KeyRing, process_keyring
from bot.web.audit import audit
from bot.web.calls_query import CallDetail, load_call
from bot.web.deps import Viewer

MIN_REASON = 5


class ReasonTooShort(HTTPException):
    """A reveal whose reason, stripped, is shorter than ``MIN_REASON``. The API answers it
    as it is (422); the page shows the call again, masked, with the message (400)."""

    def __init__(self) -> None:
        super().__init__(422, f"give a reason of at least {MIN_REASON} characters")


def call_or_404(session: Session, call_id: int) -> CallDetail:
    detail = load_call(session, call_id)
    if detail is None:
        raise HTTPException(404, f"no call {call_id}")
    return detail


def view_call(session: Session, who: Viewer, call_id: int, via: str | None = None) -> CallDetail:
    """The call (404 if none), its view audited (``call_viewed``; ``via``: the API or the
    review page, none for the call page)."""
    detail = call_or_404(session, call_id)
    audit(session, who.username, "call_viewed", "call", call_id, **_via(via))
    return detail


def reveal_call(
    session: Session,
    who: Viewer,
    call_id: int,
    reason: str,
    via: str | None = None,
    keys: KeyRing | None = None,
) -> CallDetail:
    """The call to be shown unmasked, its sealed originals decrypted with ``keys``
    (default: the process settings' key), the reveal audited (``pii_revealed`` with the
    reason, how many values were decrypted and how many could not be). The reason is
    checked first (:class:`ReasonTooShort`; nothing audited), then the call is loaded
    (404 if none)."""
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise ReasonTooShort()
    detail = call_or_404(session, call_id)
    opened = open_call(session, call_id, keys if keys is not None else process_keyring())
    rows = [
        detail.call, *detail.turns, *(e for es in detail.entities.values() for e in es),
        detail.assessment, *detail.verdicts,
    ]  # fmt: skip
    decrypted = restore(session, rows, opened)
    audit(
        session, who.username, "pii_revealed", "call", call_id, reason=reason,
        decrypted=decrypted, undecryptable=opened.failed, **_via(via),
    )  # fmt: skip
    return detail


def _via(via: str | None) -> dict[str, str]:
    """The audit detail naming the route, absent for the pages that never had it."""
    return {"via": via} if via else {}
