"""The account under investigation, and the variables a script prompt may use.

Variables are split in two: *public* ones may be spoken before the holder's identity is
confirmed (the bank's name, the holder's name needed to ask for them); *protected* ones
describe the account and may only be spoken after the identity gate has succeeded.
Lint enforces this statically; the dialogue manager enforces it again at run time by
leaving protected variables out of the rendering context until identity is confirmed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.core.masking import mask_card
from bot.core.vocab import Scenario


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: float = Field(ge=0)
    date: dt.date | None = None
    counterparty: str | None = None


class Account(BaseModel):
    """What the bank tells us about one account (the persona contract's ``account``)."""

    model_config = ConfigDict(extra="allow")

    account_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    phone: str = Field(min_length=3)
    card_last4: str | None = Field(default=None, pattern=r"^\d{4}$")
    scenario: Scenario
    model_score: float = Field(ge=0, le=1)
    branch: str | None = None
    gender: Literal["M", "F"] | None = None
    txn: Transaction | None = None

    @field_validator("account_id")
    @classmethod
    def _digits(cls, v: str) -> str:
        if not v.replace(" ", "").isdigit():
            raise ValueError("account_id must be digits")
        return v.replace(" ", "")

    def known_names(self) -> tuple[str, ...]:
        names = [self.name]
        if self.txn and self.txn.counterparty:
            names.append(self.txn.counterparty)
        return tuple(dict.fromkeys(names))


#: Variables a prompt may use before identity is confirmed.
PUBLIC_VARIABLES = frozenset({"bank_name", "holder_name", "holder_honorific"})
#: Variables that reveal something about the account.
PROTECTED_VARIABLES = frozenset(
    {
        "card_last4",
        "card_masked",
        "txn_amount",
        "txn_date",
        "txn_counterparty",
        "branch",
        "scenario",
    }
)
ALL_VARIABLES = PUBLIC_VARIABLES | PROTECTED_VARIABLES


def template_variables(
    account: Account, bank_name: str, *, identity_confirmed: bool
) -> dict[str, Any]:
    """The rendering context for ``account``. Protected values are absent (so a prompt
    that uses them fails under ``StrictUndefined``) until ``identity_confirmed``."""
    honorific = {"M": "先生", "F": "女士"}.get(account.gender or "", "")
    ctx: dict[str, Any] = {
        "bank_name": bank_name,
        "holder_name": account.name,
        "holder_honorific": honorific,
    }
    if identity_confirmed:
        txn = account.txn
        ctx.update(
            card_last4=account.card_last4 or "",
            card_masked=mask_card("0" * 12 + account.card_last4) if account.card_last4 else "",
            txn_amount=txn.amount if txn else None,
            txn_date=txn.date if txn else None,
            txn_counterparty=(txn.counterparty or "") if txn else "",
            branch=account.branch or "",
            scenario=account.scenario.value,
        )
    return ctx


def sample_account() -> Account:
    """A made-up account for previews and lint rendering."""
    return Account(
        account_id="6222000000000000",
        name="张三",
        phone="+8613800000000",
        card_last4="1234",
        scenario=Scenario.SUSPICIOUS_TXN,
        model_score=0.6,
        branch="示例支行",
        txn=Transaction(amount=49800, date=dt.date(2026, 11, 18), counterparty="李四"),
    )
