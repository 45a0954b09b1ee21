"""The identity gate on a phone line: n-best name match, fillers, lost first answers,
the keypad fallback (NLU replaced by a keyword table)."""

from __future__ import annotations

from bot.core.dialogue import CalleeEvent, DialogueManager, UtteranceKind
from bot.core.scripts import TemplateLibrary
from bot.core.vocab import EntityLabel, Intent, Outcome
from tests.conftest import TableAnalyzer, make_account
from tests.core.test_dialogue import dm_for


def _analyzer(extra: dict[str, EntityLabel] | None = None, **table: Intent) -> TableAnalyzer:
    analyzer = TableAnalyzer({"不是": Intent.DENY, "嗯": Intent.AFFIRM, **table})
    analyzer.entities.update(extra or {})
    return analyzer


def _start(library: TemplateLibrary, analyzer: TableAnalyzer) -> DialogueManager:
    dm = dm_for(library, analyzer)
    dm.start()
    return dm


def test_the_holders_name_is_expected_at_the_identity_question_only(
    library: TemplateLibrary,
) -> None:
    dm = _start(library, _analyzer(是我=Intent.AFFIRM))
    assert dm.expected_name == "李娜"
    dm.handle(CalleeEvent.speech("是我"))
    assert dm.record.identity_confirmed and dm.expected_name == ""


def test_a_name_heard_only_in_an_alternative_confirms_when_something_like_it_was_said(
    library: TemplateLibrary,
) -> None:
    dm = _start(library, _analyzer())  # 丽娜 (li na) is no entity of the table: INFORM
    nxt = dm.handle(CalleeEvent.speech("我是丽娜", alternatives=("我是李娜",)))
    assert dm.record.identity_confirmed and nxt is not None and nxt.topic == "fund_source"
    assert dm.record.turns[-2].nlu is not None
    assert dm.record.turns[-2].nlu.intent.source == "n-best"


def test_without_the_alternative_the_same_words_do_not_confirm(
    library: TemplateLibrary,
) -> None:
    dm = _start(library, _analyzer())
    dm.handle(CalleeEvent.speech("我是丽娜"))
    assert not dm.record.identity_confirmed


def test_the_name_alone_said_back_is_asked_again_even_when_an_alternative_has_it(
    library: TemplateLibrary,
) -> None:
    # "谷春梅？不认识" with the denial lost on the line: the name, and no yes
    for said, alternatives in (("丽娜", ("李娜",)), ("李娜？", ()), ("李娜", ("我是李娜",))):
        dm = _start(library, _analyzer())
        r = dm.handle(CalleeEvent.speech(said, alternatives=alternatives))
        assert not dm.record.identity_confirmed, said
        assert r is not None and r.topic == "identity" and not dm.done


def test_a_model_yes_with_no_yes_in_the_words_is_asked_again(library: TemplateLibrary) -> None:
    # a fragment of a stranger's "谁？" heard as "飞", which the models read as a yes
    for said in ("飞", "谁"):
        dm = _start(library, _analyzer(飞=Intent.AFFIRM, 谁=Intent.AFFIRM))
        r = dm.handle(CalleeEvent.speech(said))
        assert not dm.record.identity_confirmed and r is not None and r.topic == "identity"
    nxt = dm.handle(CalleeEvent.speech("嗯，是的"))  # then the holder says yes
    assert dm.record.identity_confirmed and nxt is not None and nxt.topic == "fund_source"


def test_a_yes_with_a_misheard_name_confirms_whatever_else_the_reading_hears(
    library: TemplateLibrary,
) -> None:
    # a holder's "是我，我是李娜" heard "我是李铺": the reading adds third_party
    analyzer = TableAnalyzer(
        {"我是": Intent.AFFIRM}, acts={"我是": "acts=confirm", "李铺": "acts=third_party"}
    )
    dm = _start(library, analyzer)
    dm.handle(CalleeEvent.speech("我是李铺"))
    assert dm.record.identity_confirmed


def test_shi_before_the_holders_name_is_a_yes(library: TemplateLibrary) -> None:
    # "是我，我是李娜" with its 是我 lost on the line: "使我火是李娜"
    dm = _start(library, _analyzer(火=Intent.AFFIRM))
    dm.handle(CalleeEvent.speech("使我火是李娜"))
    assert dm.record.identity_confirmed
    dm = _start(library, _analyzer(火=Intent.AFFIRM))
    dm.handle(CalleeEvent.speech("使我火李娜"))  # the name alone, no yes: asked again
    assert not dm.record.identity_confirmed


def test_only_a_short_or_questioning_answer_without_a_yes_may_continue(
    library: TemplateLibrary,
) -> None:
    dm = _start(library, _analyzer(是我=Intent.AFFIRM))
    held = [
        t
        for t in (
            "谁？",
            "飞",
            "李娜？",
            "喂？",
            "不是",
            "是的",
            "对，是我",
            "嗯，我就是",
            "不是，你打错了。",
            "",
        )
        if dm.answer_may_continue(t)
    ]
    assert held == ["谁？", "飞", "李娜？", "喂？", "不是"]
    dm.handle(CalleeEvent.speech("是我"))
    assert dm.record.identity_confirmed and not dm.answer_may_continue("谁？")  # past the gate


def test_a_bare_filler_never_confirms_even_with_the_name_in_an_alternative(
    library: TemplateLibrary,
) -> None:
    for filler in ("嗯", "喂"):
        dm = _start(library, _analyzer(喂=Intent.INFORM))
        r = dm.handle(CalleeEvent.speech(filler, alternatives=("李娜",)))
        assert not dm.record.identity_confirmed and r is not None and r.topic == "identity"


def test_a_name_that_does_not_sound_like_the_holders_is_not_rescued(
    library: TemplateLibrary,
) -> None:
    dm = _start(library, _analyzer())
    dm.handle(CalleeEvent.speech("李明", alternatives=("李娜",)))  # li ming: not li na
    assert not dm.record.identity_confirmed


def test_a_denial_with_the_name_in_an_alternative_stays_a_denial(
    library: TemplateLibrary,
) -> None:
    dm = _start(library, _analyzer())
    dm.handle(CalleeEvent.speech("不是丽娜", alternatives=("我是李娜",)))
    assert dm.record.outcome is Outcome.WRONG_PERSON and not dm.record.identity_confirmed


def test_yes_with_someone_elses_name_is_asked_again(library: TemplateLibrary) -> None:
    dm = _start(library, _analyzer({"李明": EntityLabel.PERSON}, 我是=Intent.AFFIRM))
    r = dm.handle(CalleeEvent.speech("我是李明"))
    assert not dm.record.identity_confirmed and r is not None
    assert r.kind is UtteranceKind.REPROMPT and "按1" in r.text


def test_hello_and_waiting_is_asked_again_never_no_answer(library: TemplateLibrary) -> None:
    dm = _start(library, _analyzer(喂=Intent.ASK_REPEAT))
    kinds = []
    for event in (CalleeEvent.speech("喂"), CalleeEvent.silence(), CalleeEvent.silence()):
        r = dm.handle(event)
        assert r is not None
        kinds.append(r.kind)
        if dm.done:
            break
    assert kinds[:2] == [UtteranceKind.REPEAT, UtteranceKind.REPROMPT]
    assert dm.record.outcome is not Outcome.NO_ANSWER
    # the keypad was offered before giving up
    assert any("按1" in t.text for t in dm.record.turns if t.role == "bot")


def test_after_the_keypad_offer_a_key_confirms(library: TemplateLibrary) -> None:
    dm = _start(library, _analyzer(喂=Intent.ASK_REPEAT))
    for event in (CalleeEvent.speech("喂"), CalleeEvent.silence(), CalleeEvent.silence()):
        dm.handle(event)
    assert not dm.done
    nxt = dm.handle(CalleeEvent.dtmf("1"))
    assert dm.record.identity_confirmed and nxt is not None and nxt.topic == "fund_source"


def test_speech_not_understood_is_asked_again(library: TemplateLibrary) -> None:
    dm = _start(library, _analyzer())
    dm.analyzer.default = Intent.UNCLEAR  # type: ignore[attr-defined]
    r = dm.handle(CalleeEvent.speech(""))
    assert r is not None and r.kind is UtteranceKind.REPEAT and r.topic == "identity"
    assert dm.record.turns[-2].decision == "speech not understood: re-ask"


def test_silence_alone_still_ends_as_no_answer(library: TemplateLibrary) -> None:
    dm = _start(library, _analyzer())
    dm.handle(CalleeEvent.silence())
    dm.handle(CalleeEvent.silence())
    assert dm.record.outcome is Outcome.NO_ANSWER


def test_the_name_is_not_expected_by_another_account(library: TemplateLibrary) -> None:
    dm = dm_for(library, _analyzer(), account=make_account(name="张伟"))
    dm.start()
    assert dm.expected_name == "张伟"


def _greeting_analyzer(**table: Intent) -> TableAnalyzer:
    """A noisy line's voicemail greeting: each half misheard reads as a refusal."""
    return _analyzer(**table, 留言=Intent.VOICEMAIL, 接听=Intent.REFUSE, 提示=Intent.REFUSE)


def test_a_greeting_in_two_turns_ends_as_voicemail_by_the_n_best(
    library: TemplateLibrary,
) -> None:
    # p09 on the 15 dB line: the pause in the greeting ended the turn, 留言 only in the n-best.
    dm = _start(library, _greeting_analyzer())
    first = dm.handle(CalleeEvent.speech("你好年波打滴用破战时无法接听"))
    assert first is not None and first.kind is UtteranceKind.REPROMPT
    dm.handle(CalleeEvent.speech("请再提示因货流源", alternatives=("请再提示因货留言",)))
    assert dm.record.outcome is Outcome.VOICEMAIL
    assert dm.record.turns[-2].decision == "voicemail detected"


def test_a_greeting_cut_across_two_turns_ends_as_voicemail_read_whole(
    library: TemplateLibrary,
) -> None:
    dm = _start(library, _greeting_analyzer(无法接听请再=Intent.VOICEMAIL))
    dm.handle(CalleeEvent.speech("您好暂时无法接听"))
    assert not dm.done
    dm.handle(CalleeEvent.speech("请再提示因货流源", interrupted=True))
    assert dm.record.outcome is Outcome.VOICEMAIL


def test_a_voicemail_reading_in_the_n_best_beats_a_yes(library: TemplateLibrary) -> None:
    # A greeting that says its owner's name must not be taken for the holder.
    dm = _start(library, _greeting_analyzer(是我=Intent.AFFIRM))
    dm.handle(CalleeEvent.speech("是我", alternatives=("请在提示音后留言",)))
    assert dm.record.outcome is Outcome.VOICEMAIL and not dm.record.identity_confirmed


def test_two_refusals_at_the_gate_are_not_read_as_a_greeting(
    library: TemplateLibrary,
) -> None:
    dm = _start(library, _greeting_analyzer(不想说=Intent.REFUSE))
    dm.handle(CalleeEvent.speech("不想说", alternatives=("不想说啊",)))
    dm.handle(CalleeEvent.speech("不想说"))
    assert dm.done and dm.record.outcome is not Outcome.VOICEMAIL


def test_a_plain_short_yes_is_complete_and_nothing_else_is(library: TemplateLibrary) -> None:
    dm = _start(library, _analyzer(是我=Intent.AFFIRM, 是的=Intent.AFFIRM, 飞=Intent.AFFIRM))
    complete = [
        t
        for t in ("是我", "嗯，是的", "飞", "谁？", "不是", "是我，不过你们是哪个银行的", "")
        if dm.answer_complete(t)
    ]
    assert complete == ["是我", "嗯，是的"]
    assert dm.record.turns[-1].role == "bot"  # asking changed nothing: no answer was taken
    dm.handle(CalleeEvent.speech("是我"))
    assert not dm.answer_complete("是我")  # past the gate, answers keep their pauses


def test_a_short_yes_read_as_more_than_a_yes_may_continue_and_is_not_complete(
    library: TemplateLibrary,
) -> None:
    # "喂？段永福啊？……他不在，我是他老婆" heard "喂对有说啊" before its second half: a
    # yes to the models, and a question back
    analyzer = TableAnalyzer(
        {"对": Intent.AFFIRM}, acts={"对": "acts=confirm", "说啊": "acts=ask_who"}
    )
    dm = _start(library, analyzer)
    assert dm.answer_may_continue("喂对有说啊") and not dm.answer_complete("喂对有说啊")
    assert dm.answer_complete("对对") and not dm.answer_may_continue("对对")
