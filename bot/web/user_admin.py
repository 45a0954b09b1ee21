"""Changing dashboard users, shared by ``bot users`` and ``/api/v1/users``."""

from __future__ import annotations

from sqlmodel import Session, col, delete

from bot.store.models import UserRow, WebSessionRow


def update_user(session: Session, user: UserRow, **values: object) -> UserRow:
    """Set ``values`` on ``user`` in the caller's transaction; disabling a user also ends
    their sessions (signed out everywhere at once)."""
    for key, value in values.items():
        setattr(user, key, value)
    session.add(user)
    if values.get("disabled"):
        session.exec(delete(WebSessionRow).where(col(WebSessionRow.user_id) == user.id))
    return user
