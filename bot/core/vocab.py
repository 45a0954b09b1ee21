"""Controlled vocabularies shared with other tools (see ``../shared/design.md``).

These strings are part of the public contract: persona files, the ``bot eval`` report
and the bank-facing disposition feed all use them verbatim. Do not rename members.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How a call ended."""

    COMPLETED = "completed"
    WRONG_PERSON = "wrong_person"
    REFUSED = "refused"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    HUNG_UP = "hung_up"


class Announcement(StrEnum):
    """A carrier's recorded announcement instead of a person (您拨打的电话已关机 …)."""

    POWERED_OFF = "powered_off"
    UNREACHABLE = "unreachable"
    IN_CALL = "in_call"
    #: 空号 / 已停机: the bank's contact data is wrong, calling again will not help.
    NUMBER_UNKNOWN = "number_unknown"
    SUSPENDED = "suspended"

    @property
    def contact_invalid(self) -> bool:
        return self in (Announcement.NUMBER_UNKNOWN, Announcement.SUSPENDED)


#: Outcomes of attempts that never reached the line: the connect rate counts every other
#: outcome (a person or voicemail answered) over all attempts, everywhere (worker status
#: line, campaign status, monitor, alerts, dashboards/prometheus/alerts.yml).
NOT_CONNECTED: frozenset[Outcome] = frozenset({Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED})


class RiskBand(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Disposition(StrEnum):
    CLEAR = "clear"
    MONITOR = "monitor"
    LIMIT_NON_COUNTER = "limit_non_counter"
    SUSPEND_NON_COUNTER = "suspend_non_counter"
    SUSPEND_ALL = "suspend_all"
    RETRY_CALL = "retry_call"
    MANUAL_INVESTIGATION = "manual_investigation"


class Scenario(StrEnum):
    NEW_ACCOUNT = "new_account"
    DORMANT = "dormant"
    SUSPICIOUS_TXN = "suspicious_txn"


class Topic(StrEnum):
    """Topic keys of the persona contract. Scripts may use other keys for non-questions
    (opening, closing...); a simulated callee answers those with ``default``."""

    IDENTITY = "identity"
    CARD_PURPOSE = "card_purpose"
    FUND_SOURCE = "fund_source"
    CARD_CUSTODY = "card_custody"
    COUNTERPARTY = "counterparty"
    OCCUPATION = "occupation"
    DEFAULT = "default"


class EntityLabel(StrEnum):
    PERSON = "person"
    RELATIONSHIP = "relationship"
    OCCUPATION = "occupation"
    EMPLOYER = "employer"
    LOCATION = "location"
    AMOUNT = "amount"
    DATE = "date"
    PURPOSE = "purpose"
    ID_NUMBER = "id_number"
    PHONE = "phone"
    CARD_NUMBER = "card_number"


#: Entity labels whose values are always masked when shown or logged.
SENSITIVE_LABELS = frozenset({EntityLabel.ID_NUMBER, EntityLabel.PHONE, EntityLabel.CARD_NUMBER})


class Purpose(StrEnum):
    """Normalised values of the ``purpose`` entity."""

    SALARY = "salary"
    DAILY_SPENDING = "daily_spending"
    SAVINGS_INVESTMENT = "savings_investment"
    BUSINESS = "business"
    LOAN_REPAYMENT = "loan_repayment"
    COLLECT_FOR_OTHERS = "collect_for_others"
    OTHER = "other"


class Intent(StrEnum):
    """Answer intents. General ones apply to any question; ``CUSTODY_*`` and
    ``CREDENTIALS_SHARED`` are the answer classes of the card-custody topic."""

    AFFIRM = "affirm"
    DENY = "deny"
    REFUSE = "refuse"
    UNCLEAR = "unclear"  # don't know / can't remember / vague
    ASK_REPEAT = "ask_repeat"
    BUSY_CALLBACK = "busy_callback"
    THIRD_PARTY = "third_party"  # someone other than the holder answered
    WRONG_NUMBER = "wrong_number"  # the holder is unknown at this number
    VOICEMAIL = "voicemail"  # answering machine / operator announcement
    INFORM = "inform"  # a substantive answer to the question
    CUSTODY_SELF = "custody_self"
    CUSTODY_FAMILY = "custody_family"
    CUSTODY_LENT = "custody_lent"
    CUSTODY_SOLD = "custody_sold"  # rented out or sold
    CREDENTIALS_SHARED = "credentials_shared"  # password / SMS code / online banking given away


CUSTODY_INTENTS = frozenset(
    {
        Intent.CUSTODY_SELF,
        Intent.CUSTODY_FAMILY,
        Intent.CUSTODY_LENT,
        Intent.CUSTODY_SOLD,
        Intent.CREDENTIALS_SHARED,
    }
)
