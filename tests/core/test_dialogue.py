"""Dialogue manager behaviour on the built-in scripts (NLU replaced by a keyword table)."""

from __future__ import annotations

import pytest

from bot.core.account import Account
from bot.core.dialogue import (
    BotUtterance,
    CalleeEvent,
    DialogueError,
    DialogueManager,
    UtteranceKind,
)
from bot.core.scripts import TemplateLibrary
from bot.core.vocab import EntityLabel, Intent, Outcome
from nlu.types import IntentScore, NluContext, NluResult
from tests.conftest import TableAnalyzer, make_account

ACCOUNT_DETAILS = ("0002", "4.98万", "49800", "王强", "11月18日")


def dm_for(
    library: TemplateLibrary,
    analyzer: TableAnalyzer,
    script: str = "suspicious_txn_full",
    account: Account | None = None,
    **kw: object,
) -> DialogueManager:
    return DialogueManager(
        library.scripts[script],
        account or make_account(),
        analyzer,
        library.language("zh"),
        bank_name="示例银行",
        **kw,  # type: ignore[arg-type]
    )


def converse(dm: DialogueManager, answers: list[str | CalleeEvent | None]) -> list[BotUtterance]:
    said = [dm.start()]
    for a in answers:
        if dm.done:
            break
        event = (
            a
            if isinstance(a, CalleeEvent)
            else CalleeEvent.silence()
            if a is None
            else CalleeEvent.speech(a)
        )
        out = dm.handle(event)
        if out is not None:
            said.append(out)
    return said


def test_happy_path_visits_every_topic_and_completes(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    said = converse(dm, ["是我", "工资", "我父亲", "发工资", "自己保管", "没有", "我是老师"])
    assert dm.done and dm.record.outcome is Outcome.COMPLETED
    assert dm.record.identity_confirmed
    topics = [u.topic for u in said]
    assert topics[:2] == ["identity", "fund_source"]
    assert {"counterparty", "card_purpose", "card_custody", "occupation"} <= set(topics)
    assert said[-1].final and said[-1].kind is UtteranceKind.CLOSING
    assert [a.topic for a in dm.record.answers][:2] == ["fund_source", "counterparty"]


def test_first_utterance_is_disclosure_plus_identity_question_without_account_details(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    first = dm_for(library, analyzer).start()
    assert first.topic == "identity"
    assert "智能语音助手" in first.text and "录音" in first.text and "李娜" in first.text
    assert not any(d in first.text for d in ACCOUNT_DETAILS)


def test_account_details_follow_identity_confirmation(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    dm.start()
    second = dm.handle(CalleeEvent.speech("是我"))
    assert second is not None and "4.98万元" in second.text and "11月18日" in second.text


@pytest.mark.parametrize("answer", ["他不在，我是他老婆", "你打错了"])
def test_wrong_person_ends_without_disclosing_anything(
    library: TemplateLibrary, analyzer: TableAnalyzer, answer: str
) -> None:
    dm = dm_for(library, analyzer)
    said = converse(dm, [answer])
    assert dm.record.outcome is Outcome.WRONG_PERSON and not dm.record.identity_confirmed
    for u in said:
        assert not any(d in u.text for d in ACCOUNT_DETAILS), u.text


def test_voicemail_leaves_nothing_sensitive(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    said = converse(dm, ["您拨打的用户暂时无法接听，请在提示音后留言"])
    assert dm.record.outcome is Outcome.VOICEMAIL
    assert not any(d in said[-1].text for d in (*ACCOUNT_DETAILS, "李娜"))


def test_repeated_refusal_ends_politely_as_refused(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    said = converse(dm, ["是我", "我不想说", "我不想说", "我不想说", "我不想说"])
    assert dm.record.outcome is Outcome.REFUSED
    assert dm.record.refusals == 3  # settings.budget.refusals_to_end
    assert "官方客服" in said[-1].text


def test_a_single_refusal_moves_on(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer)
    converse(dm, ["是我", "我不想说", "我父亲", "发工资", "自己保管", "没有", "我是老师"])
    assert dm.record.outcome is Outcome.COMPLETED and dm.record.refusals == 1


def test_ask_repeat_repeats_the_same_prompt(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    first = dm.start()
    again = dm.handle(CalleeEvent.speech("你再说一遍"))
    assert again is not None and again.kind is UtteranceKind.REPEAT
    assert again.text.endswith(first.text) and again.text.startswith("好的，我再说一遍")


def test_repeat_requests_are_limited(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer)
    dm.start()
    kinds = [dm.handle(CalleeEvent.speech("再说一遍")) for _ in range(4)]
    assert [k.kind for k in kinds if k][:2] == [UtteranceKind.REPEAT, UtteranceKind.REPEAT]
    assert dm.done  # third: clarifying re-prompt; fourth: identity still unverified -> closing


def test_silence_reprompts_once_then_moves_on(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    dm.start()
    dm.handle(CalleeEvent.speech("是我"))
    r = dm.handle(CalleeEvent.silence())
    assert r is not None and r.kind is UtteranceKind.REPROMPT and r.topic == "fund_source"
    nxt = dm.handle(CalleeEvent.silence())
    assert nxt is not None and nxt.topic == "counterparty"
    assert dm.record.no_inputs == 2


def test_silence_at_identity_ends_as_no_answer(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    converse(dm, [None, None])
    assert dm.record.outcome is Outcome.NO_ANSWER


def test_unclear_gets_one_clarifying_reprompt(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    dm.start()
    dm.handle(CalleeEvent.speech("是我"))
    r = dm.handle(CalleeEvent.speech("我不知道"))
    assert r is not None and r.kind is UtteranceKind.REPROMPT and "来源" in r.text
    nxt = dm.handle(CalleeEvent.speech("我不知道"))
    assert nxt is not None and nxt.topic == "counterparty"
    assert [a.topic for a in dm.record.answers] == ["fund_source"]


def test_busy_callee_gets_a_callback(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer)
    said = converse(dm, ["是我", "我在开会"])
    assert dm.record.outcome is Outcome.BUSY and "稍后再联系" in said[-1].text


def test_hangup_keeps_what_was_gathered(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer)
    converse(dm, ["是我", "工资", CalleeEvent.hangup(12.0)])
    assert dm.record.outcome is Outcome.HUNG_UP and dm.record.ended_by == "callee_hangup"
    assert [a.topic for a in dm.record.answers] == ["fund_source"]
    assert dm.record.turns[-1].decision == "callee hung up"


def test_dtmf_confirms_identity(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer)
    dm.start()
    nxt = dm.handle(CalleeEvent.dtmf("1"))
    assert dm.record.identity_confirmed and nxt is not None and nxt.topic == "fund_source"


def test_custody_lent_triggers_follow_ups(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    said = converse(
        dm, ["是我", "工资", "我父亲", "发工资", "借给朋友了", "朋友在用", "没有", "我是老师"]
    )
    nodes = [u.node_id for u in said]
    assert nodes.index("custody_who") == nodes.index("card_custody") + 1
    assert "credentials_check" in nodes and dm.record.outcome is Outcome.COMPLETED


def test_counterparty_follow_up_only_when_relationship_missing(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    said = converse(
        dm, ["是我", "工资", "不认识这个人", "反正就是转了", "发工资", "自己保管", "没有", "老师"]
    )
    assert "counterparty_howmet" in [u.node_id for u in said]


def test_counterparty_question_skipped_without_a_counterparty(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    account = make_account(txn=None, scenario="new_account")
    dm = dm_for(library, analyzer, script="new_account_full", account=account)
    said = converse(dm, ["是我"] + ["好的"] * 10)
    assert "counterparty" not in [u.node_id for u in said]
    assert dm.record.outcome is Outcome.COMPLETED
    fund = next(u for u in said if u.topic == "fund_source")
    assert "资金主要是从哪里来的" in fund.text


def test_turn_budget_closes_the_call(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer, max_turns=3)
    said = converse(dm, ["是我", "工资", "我父亲", "发工资"])
    assert dm.record.ended_by == "budget_turns" and said[-1].final


def test_duration_budget_closes_the_call(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer, max_seconds=60)
    dm.start()
    dm.handle(CalleeEvent.speech("是我", at=5))
    last = dm.handle(CalleeEvent.speech("工资", at=61))
    assert last is not None and last.final and dm.record.ended_by == "budget_time"


def test_record_keeps_transcript_nlu_and_decisions(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    converse(dm, ["是我", "工资"])
    callee = [t for t in dm.record.turns if t.role == "callee"]
    assert callee[0].nlu is not None and callee[0].nlu.intent.intent.value == "affirm"
    assert callee[0].decision.startswith("affirm -> fund_source")
    assert dm.record.script_ref == "suspicious_txn_full@v1" and len(dm.record.script_digest) == 64


def test_handle_after_end_is_an_error(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer)
    converse(dm, ["打错了"])
    with pytest.raises(DialogueError):
        dm.handle(CalleeEvent.speech("喂"))


class _ModelGuess(TableAnalyzer):
    """An analyzer whose (model) intent is wrong; entities are right."""

    def __init__(self, intent: Intent, extra: dict[str, EntityLabel] | None = None):
        super().__init__({}, default=intent)
        self.entities.update(extra or {})

    def analyze(self, text: str, context: NluContext) -> NluResult:
        r = super().analyze(text, context)
        return NluResult(r.raw_text, r.text, IntentScore(r.intent.intent, 0.7, "model"), r.entities)


def test_self_identification_by_name_confirms_despite_a_wrong_model_guess(
    library: TemplateLibrary,
) -> None:
    dm = dm_for(library, _ModelGuess(Intent.DENY))  # type: ignore[arg-type]
    dm.start()
    nxt = dm.handle(CalleeEvent.speech("嗯，我是李娜，您说"))
    assert dm.record.identity_confirmed and nxt is not None and nxt.topic == "fund_source"


def test_holders_name_with_a_kinship_word_does_not_confirm(library: TemplateLibrary) -> None:
    dm = dm_for(library, _ModelGuess(Intent.DENY, {"老伴": EntityLabel.RELATIONSHIP}))  # type: ignore[arg-type]
    dm.start()
    dm.handle(CalleeEvent.speech("我是李娜的老伴"))
    assert not dm.record.identity_confirmed


def test_barge_in_without_an_answer_re_asks_the_same_prompt(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    dm.start()
    question = dm.handle(CalleeEvent.speech("是我"))
    assert question is not None
    again = dm.handle(CalleeEvent.speech("不知道", interrupted=True))
    assert again is not None and again.kind is UtteranceKind.REPEAT
    assert again.text == question.text and again.topic == question.topic
    assert dm.record.turns[-2].decision == "barge-in without an answer: re-ask"


def test_barge_in_with_an_answer_consumes_it(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    dm.start()
    question = dm.handle(CalleeEvent.speech("是我"))
    assert question is not None
    nxt = dm.handle(CalleeEvent.speech("卡是我自己保管", interrupted=True))
    assert nxt is not None and nxt.kind is UtteranceKind.PROMPT and nxt.node_id != question.node_id
    assert dm.record.answers[-1].topic == question.topic


def test_without_barge_in_an_unclear_answer_gets_the_clarifying_reprompt(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    dm.start()
    dm.handle(CalleeEvent.speech("是我"))
    r = dm.handle(CalleeEvent.speech("不知道"))
    assert r is not None and r.kind is UtteranceKind.REPROMPT


# -- the dialogue follows the caller ------------------------------------------------------


def test_a_confirmation_with_a_question_is_answered_and_goes_on(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    said = converse(dm, ["是我，你哪位？"])
    assert dm.record.identity_confirmed and not dm.done
    assert said[-1].text.startswith("我这边是示例银行的智能语音助手")
    assert said[-1].topic != "identity"  # the next question follows the reply


def test_a_doubting_caller_is_told_how_to_check_the_call(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer, bank_hotline="95000")
    said = converse(dm, ["是我，你们不会是骗子吧"])
    reply = said[-1].text
    assert "95000" in reply and "不会向您索要密码或验证码" in reply
    assert dm.record.identity_confirmed
    # Without a configured number the caller is sent to the one on their card.
    said = converse(dm_for(library, analyzer), ["是我，骗子吧"])
    assert "银行卡背面" in said[-1].text


def test_the_reply_is_said_once_per_call(library: TemplateLibrary, analyzer: TableAnalyzer) -> None:
    dm = dm_for(library, analyzer)
    said = converse(dm, ["是我，你哪位", "你哪位啊，这钱是工资"])
    assert sum("智能语音助手，来电" in s.text for s in said) == 1


def test_a_hard_of_hearing_caller_gets_a_slower_prompt(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    dm = dm_for(library, analyzer)
    said = converse(dm, ["啊？听不清"])
    assert said[-1].slow and said[-1].text.startswith("好的，我说慢一点。")
    # Shorter, not longer: the question alone, without the opening or the keypad help.
    assert len(said[-1].text) < len(said[0].text) and "按1" not in said[-1].text
    assert not dm.done  # re-asked, not ended as unverified
    nxt = dm.handle(CalleeEvent.speech("是我"))
    assert dm.record.identity_confirmed and nxt is not None and nxt.slow


def test_a_request_for_a_person_is_honoured_and_never_a_refusal(
    library: TemplateLibrary, analyzer: TableAnalyzer
) -> None:
    analyzer.table = {"我不想说": Intent.REFUSE, **analyzer.table}
    dm = dm_for(library, analyzer)
    said = converse(dm, ["是我", "我不想说，你让人工跟我说"])
    assert dm.record.handoff_requested and dm.record.refusals == 0
    assert "已经为您登记人工回电" in said[-1].text and not dm.done
    last = dm.handle(CalleeEvent.speech("我要人工"))
    assert dm.done and dm.record.outcome is Outcome.COMPLETED
    assert last is not None and last.node_id == "close_handoff" and "工作人员给您回电" in last.text
