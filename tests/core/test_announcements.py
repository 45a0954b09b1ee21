"""Carrier announcements instead of a person: recognised by kind, nothing said to them,
and the number's fate (called again, or a person checks the contact data)."""

from __future__ import annotations

import pytest

from bot.core.dialogue import CalleeEvent
from bot.core.investigation import Investigator
from bot.core.policy import Policy
from bot.core.routing import load_router
from bot.core.scoring import RiskScorer, load_ruleset
from bot.core.scripts import TemplateLibrary, load_library
from bot.core.vocab import Announcement, Disposition, Intent, Outcome
from bot.settings import Settings
from tests.conftest import STANDARD_TABLE, TEMPLATES, TableAnalyzer, make_account
from tests.core.test_dialogue import dm_for


def _analyzer() -> TableAnalyzer:
    return TableAnalyzer({"您拨打的": Intent.VOICEMAIL, **STANDARD_TABLE})


@pytest.mark.parametrize(
    "said, kind",
    [
        ("您好，您拨打的电话已关机。Sorry, the subscriber you dialed is power off.", "powered_off"),
        ("对不起，您拨打的用户暂时无法接通，请稍后再拨。", "unreachable"),
        ("您好，您拨打的电话正在通话中，请稍后再拨。", "in_call"),
        ("您好，您拨打的号码是空号，请查证后再拨。", "number_unknown"),
        ("您好，您拨打的电话已停机。", "suspended"),
    ],
)
def test_each_announcement_ends_the_call_without_a_word(
    library: TemplateLibrary, said: str, kind: str
) -> None:
    dm = dm_for(library, _analyzer())
    dm.start()
    assert dm.handle(CalleeEvent.speech(said)) is None
    assert dm.done and dm.record.outcome is Outcome.VOICEMAIL
    assert dm.record.announcement is Announcement(kind) and dm.record.ended_by == "announcement"
    assert [t.role for t in dm.record.turns] == ["bot", "callee"]  # the greeting, then nothing


def test_an_announcement_that_invites_a_message_is_a_voicemail_box(
    library: TemplateLibrary,
) -> None:

    dm = dm_for(library, _analyzer())
    dm.start()
    out = dm.handle(CalleeEvent.speech("您拨打的用户暂时无法接通，请在提示音后留言。"))
    assert out is not None and out.final  # the neutral message, as for any voicemail
    assert dm.record.outcome is Outcome.VOICEMAIL and dm.record.announcement is None


def test_an_unknown_or_suspended_number_goes_to_a_person_the_others_are_called_again() -> None:
    s = Settings()
    router, _ = load_router(TEMPLATES, s.tiers.medium, s.tiers.high)
    investigator = Investigator(
        load_library(TEMPLATES),
        router,
        RiskScorer(load_ruleset(TEMPLATES / "rulesets" / "default.yaml")),
        Policy(sample_rate=0.0),
        _analyzer(),
        bank_name="示例银行",
    )

    fates = {}
    for said, attempts_left in (("您拨打的电话已关机", True), ("您拨打的号码是空号", True)):
        account = make_account()
        dm = investigator.dialogue(account)
        dm.start()
        dm.handle(CalleeEvent.speech(said))
        result = investigator.conclude(account, dm.record, attempts_left=attempts_left)
        fates[said] = (result.decision.disposition, result.decision.situation)
    assert fates == {
        "您拨打的电话已关机": (Disposition.RETRY_CALL, "unreached_retry"),
        "您拨打的号码是空号": (Disposition.MANUAL_INVESTIGATION, "contact_invalid"),
    }
    policy = Policy()
    assert policy.decide(Outcome.VOICEMAIL, None, contact_invalid=True).needs_review is False
    # contact data is no reason to overrule a call that reached someone
    assert policy.decide(Outcome.WRONG_PERSON, None, contact_invalid=True).situation == (
        "wrong_person"
    )
