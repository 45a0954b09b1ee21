"""Realistic dashboard data: the public personas called by a real worker (text mode,
rules-only NLU), so calls, turns, entities, scores, dispositions, outbox entries and
review items are exactly what production writes."""

from __future__ import annotations

from functools import cache

import yaml
from sqlalchemy.engine import Engine

from bot.campaign.recorder import account_fields
from bot.campaign.worker import SimulatedGateway, Worker
from bot.core.account import Account
from bot.core.investigation import Investigator
from bot.runtime import build_investigator
from bot.settings import Settings
from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign
from tests.conftest import SHARED


@cache
def investigator() -> Investigator:
    return build_investigator(Settings(intent_model_enabled=False))


def populate(engine: Engine, campaign: str = "nov-mules") -> int:
    """One campaign with the ten public personas, called once each; returns its id."""
    personas = [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((SHARED / "personas").glob("*.yaml"))
    ]
    accounts = [account_fields(Account.model_validate(p["account"])) for p in personas]
    campaign_id, _ = make_campaign(engine, campaign, accounts=accounts, max_attempts=1)
    gateway = SimulatedGateway({p["account"]["account_id"]: p["answers"] for p in personas})
    Worker(engine, investigator(), gateway, poll_s=0.01, clock=lambda: MONDAY_10_LOCAL).run(
        until_idle=True
    )
    return campaign_id
