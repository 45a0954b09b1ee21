"""The do-not-call list: numbers (E.164) that are never dialled. A number added here
cancels its queued work items when a worker reaches them (bot.campaign.queue), and the
importer creates items for listed numbers already cancelled."""

from __future__ import annotations

import phonenumbers
from sqlmodel import Session, col, func, select

from bot.core.masking import mask_text
from bot.store.models import DncEntryRow

#: Where a number without a country code is taken to be.
DEFAULT_REGION = "CN"


class NotAPhoneNumber(ValueError):
    pass


def normalise(phone: str, region: str = DEFAULT_REGION) -> str:
    """``phone`` (any format) as E.164, or :class:`NotAPhoneNumber`."""
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as exc:
        raise NotAPhoneNumber(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise NotAPhoneNumber("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def add(session: Session, phone: str, reason: str = "") -> tuple[DncEntryRow, bool]:
    """List ``phone`` in the caller's transaction; returns its entry and whether it is
    new (listing a number twice keeps the first entry and its reason). The reason is
    free text, stored masked like everything people write (it may quote a number)."""
    e164 = normalise(phone)
    listed = session.exec(select(DncEntryRow).where(DncEntryRow.phone_e164 == e164)).first()
    if listed is not None:
        return listed, False
    entry = DncEntryRow(phone_e164=e164, reason=mask_text(reason))
    session.add(entry)
    session.flush()
    return entry, True


def entries(session: Session, offset: int = 0, limit: int = 100) -> tuple[list[DncEntryRow], int]:
    """A page of the list, newest first, and the total."""
    total = session.exec(select(func.count()).select_from(DncEntryRow)).one()
    query = (
        select(DncEntryRow)
        .order_by(col(DncEntryRow.added_at).desc(), col(DncEntryRow.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(query).all()), total
