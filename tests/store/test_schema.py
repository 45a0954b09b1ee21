"""The migrated schema on both engines: constraints that protect campaigns."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.store.models import AccountRow, CampaignAccountRow, CampaignRow


def _account(session: Session, account_id: str = "6222000000000001") -> AccountRow:
    row = AccountRow(
        account_id=account_id,
        name="张三",
        phone="13800000000",
        phone_e164="+8613800000000",
        scenario="dormant",
        model_score=0.5,
        extra={"k": "v"},
    )
    session.add(row)
    session.flush()
    return row


def test_json_and_dates_round_trip(engine: Engine) -> None:
    with Session(engine) as s:
        a = _account(s)
        c = CampaignRow(
            name="c1", backoff_minutes=[30, 120], weekdays=[1, 2, 3, 4, 5], holidays=["2026-10-01"]
        )
        s.add(c)
        s.commit()
        account_pk = a.id
    with Session(engine) as s:
        got = s.exec(select(CampaignRow)).one()
        assert got.backoff_minutes == [30, 120] and got.holidays == ["2026-10-01"]
        assert s.get(AccountRow, account_pk).extra == {"k": "v"}  # type: ignore[union-attr]


def test_account_id_is_unique(engine: Engine) -> None:
    with Session(engine) as s:
        _account(s)
        s.commit()
        with pytest.raises(sa.exc.IntegrityError):
            _account(s)
            s.commit()


def test_never_two_live_calls_for_one_account(engine: Engine) -> None:
    with Session(engine) as s:
        a = _account(s)
        c1, c2 = CampaignRow(name="a"), CampaignRow(name="b")
        s.add_all([c1, c2])
        s.flush()
        s.add(CampaignAccountRow(campaign_id=c1.id, account_pk=a.id, state="in_progress"))  # type: ignore[arg-type]
        s.add(CampaignAccountRow(campaign_id=c2.id, account_pk=a.id, state="queued"))  # type: ignore[arg-type]
        s.commit()
        second = s.exec(
            select(CampaignAccountRow).where(CampaignAccountRow.campaign_id == c2.id)
        ).one()
        second.state = "in_progress"
        s.add(second)
        with pytest.raises(sa.exc.IntegrityError):
            s.commit()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(CampaignAccountRow(campaign_id=999, account_pk=999))
        with pytest.raises(sa.exc.IntegrityError):
            s.commit()
