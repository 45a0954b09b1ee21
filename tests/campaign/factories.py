"""Rows for campaign tests, written straight through the ORM."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine

from bot.store.db import session_scope
from bot.store.models import AccountRow, CampaignAccountRow, CampaignRow

MONDAY_10_LOCAL = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 10:00 Asia/Shanghai


def make_campaign(
    engine: Engine,
    name: str = "c",
    *,
    n: int = 3,
    state: str = "running",
    accounts: list[dict[str, Any]] | None = None,
    **campaign: Any,
) -> tuple[int, list[int]]:
    """A campaign with ``n`` accounts (or the given ones) queued; returns (id, account pks)."""
    specs = accounts or [
        {"account_id": f"6222{int.from_bytes(name.encode(), 'big') % 10**6:06d}{i:06d}"}
        for i in range(n)
    ]
    with session_scope(engine) as s:
        c = CampaignRow(name=name, state=state, backoff_minutes=[30, 120], **campaign)
        s.add(c)
        s.flush()
        pks = []
        for i, spec in enumerate(specs):
            row = AccountRow(
                **{
                    "name": "张三",
                    "phone": f"1380000{i:04d}",
                    "phone_e164": f"+861380000{i:04d}",
                    "scenario": "dormant",
                    "model_score": 0.3,
                    **spec,
                }
            )
            s.add(row)
            s.flush()
            s.add(
                CampaignAccountRow(
                    campaign_id=c.id,
                    account_pk=row.id,
                    next_attempt_at=MONDAY_10_LOCAL - dt.timedelta(minutes=1),
                )
            )  # type: ignore[arg-type]
            pks.append(row.id)
        assert c.id is not None
        return c.id, pks  # type: ignore[return-value]
