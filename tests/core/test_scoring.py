"""Risk scoring: features from readings, keywords and counts; bands; explanations."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from bot.core.dialogue import Answer, DialogueRecord
from bot.core.scoring import RiskScorer, load_ruleset
from bot.core.vocab import EntityLabel as L
from bot.core.vocab import Intent as I
from bot.core.vocab import Outcome, RiskBand
from bot.core.yamlsource import SourceFileError
from nlu.intent import rules as intent_rules
from nlu.reading.schema import Reading, Slot
from nlu.types import Entity, IntentScore, NluResult
from tests.conftest import TEMPLATES, make_account

RULESET = TEMPLATES / "rulesets" / "default.yaml"


@pytest.fixture(scope="module")
def scorer() -> RiskScorer:
    return RiskScorer(load_ruleset(RULESET))


def ans(
    topic: str,
    text: str,
    intent: I = I.INFORM,
    *read: str,
    ents: tuple[tuple[L, str], ...] = (),
    node: str | None = None,
    confidence: float = 0.9,
) -> Answer:
    """An answer whose reading holds the schema values ``read`` (``custody=lent``...)."""
    entities = tuple(Entity(label, v, v, text.find(v), text.find(v) + len(v)) for label, v in ents)
    reading = Reading(tuple(Slot(r, confidence, (text[:4],)) for r in read), "test")
    return Answer(
        node or topic,
        topic,
        NluResult(text, text, IntentScore(intent, 0.9, "rule"), entities, reading),
    )


def record(
    *answers: Answer, outcome: Outcome = Outcome.COMPLETED, refusals: int = 0
) -> DialogueRecord:
    return DialogueRecord("s@v1", "x", outcome=outcome, answers=list(answers), refusals=refusals)


LEGIT = [
    ans("card_purpose", "公司发工资用的工资卡", I.INFORM, "acts=answer", "funds=salary"),
    ans("card_custody", "卡一直是我自己保管的", I.CUSTODY_SELF, "acts=answer", "holder=self"),
    ans("occupation", "我在物流公司上班", I.INFORM, "acts=answer"),
]


def test_legitimate_answers_pull_a_medium_prior_down_to_low(scorer: RiskScorer) -> None:
    a = scorer.score(record(*LEGIT), make_account(model_score=0.55))
    assert a.band is RiskBand.LOW and a.score < 0.2
    assert {"legit_income", "custody_self"} <= a.fired()
    weight = scorer.ruleset.prior_weight
    assert a.prior_contribution == pytest.approx(weight * math.log(0.55 / 0.45), abs=1e-3)


def test_a_coherent_story_clears_a_high_prior(scorer: RiskScorer) -> None:
    """The bank's score ranks accounts; it never decides the band on its own."""
    a = scorer.score(record(*LEGIT), make_account(model_score=0.92))
    assert a.band is RiskBand.LOW


def test_lending_forces_high_whatever_the_prior(scorer: RiskScorer) -> None:
    lent = ans("card_custody", "这张卡我借给朋友用了", I.CUSTODY_LENT, "custody=lent")
    a = scorer.score(record(lent, LEGIT[0], LEGIT[2]), make_account(model_score=0.05))
    assert a.band is RiskBand.HIGH and "custody_lent" in a.fired() and not a.severe
    assert a.score < scorer.ruleset.bands.high
    assert "custody_lent forces band high" in a.band_reason


def test_selling_the_card_is_severe(scorer: RiskScorer) -> None:
    rec = record(
        ans("card_custody", "卡和密码都卖给别人了", I.CUSTODY_SOLD, "custody=sold"),
        ans("occupation", "工厂上班", I.INFORM, "acts=answer"),
    )
    a = scorer.score(rec, make_account(model_score=0.9))
    assert a.band is RiskBand.HIGH and a.severe


def test_a_half_heard_admission_is_doubt_not_an_admission(scorer: RiskScorer) -> None:
    """Below the hard features' confidence the same reading is a soft signal: medium and
    a reviewer, not a suspension on a guess."""
    rec = record(
        ans("card_custody", "那几天卡在他那儿", I.INFORM, "custody=lent", confidence=0.55),
        *LEGIT[2:],
    )
    a = scorer.score(rec, make_account(model_score=0.5))
    assert "custody_lent" not in a.fired() and "possible_admission" in a.fired()
    assert a.band is RiskBand.MEDIUM


def test_a_card_shared_with_close_family_is_doubt(scorer: RiskScorer) -> None:
    rec = record(
        ans(
            "card_custody",
            "卡在我儿子那，密码他也知道",
            I.CUSTODY_FAMILY,
            "custody=credentials_shared",
            "holder=family",
        ),
        ans(
            "fund_source", "他干啥用的我也不清楚", I.UNCLEAR, "acts=dont_know", "funds=unexplained"
        ),
        *LEGIT[2:],
    )
    a = scorer.score(rec, make_account(model_score=0.5))
    assert not {"credentials_shared", "custody_lent"} & a.fired()
    assert {"family_uses_account", "family_flows_unexplained"} <= a.fired()
    assert a.band is RiskBand.MEDIUM


def test_homophone_of_a_risk_word_still_fires(scorer: RiskScorer) -> None:
    rec = record(
        ans("card_purpose", "网上有人让我帮忙刷丹，一天三百"),
        ans("occupation", "学生", I.INFORM, "acts=answer"),
    )
    a = scorer.score(rec, make_account(model_score=0.5))
    hit = next(h for h in a.hits if h.feature == "task_rebate")
    assert "刷丹≈刷单" in hit.evidence[0].match


def test_doubt_caps_at_medium_without_an_admission(scorer: RiskScorer) -> None:
    rec = record(
        ans("card_purpose", "忘了干嘛用的了", I.UNCLEAR, "acts=dont_know"),
        ans("fund_source", "记不太清了", I.UNCLEAR, "acts=dont_know", "funds=unexplained"),
        ans(
            "counterparty", "不太记得这个人了", I.UNCLEAR, "acts=dont_know", "counterparty=unknown"
        ),
        ans("occupation", "打零工的", I.INFORM, "acts=answer"),
    )
    a = scorer.score(rec, make_account(model_score=0.85))
    assert a.score >= 0.7 and a.band is RiskBand.MEDIUM
    assert "capped at medium" in a.band_reason
    unknown = next(h for h in a.hits if h.feature == "key_question_unknown")
    assert unknown.hits == 2  # capped, though three answers were vague


def test_one_silence_or_a_rude_remark_does_not_raise_a_coherent_story(scorer: RiskScorer) -> None:
    rude = ans("default", "你们银行烦不烦，天天打电话", I.INFORM, "acts=hostile")
    rec = record(*LEGIT, rude)
    rec.no_inputs = 1
    assert scorer.score(rec, make_account(model_score=0.6)).band is RiskBand.LOW


def test_credentials_follow_up_answered_yes_is_an_admission(scorer: RiskScorer) -> None:
    rec = record(ans("card_custody", "有，告诉过", I.AFFIRM, node="credentials_check"), *LEGIT)
    a = scorer.score(rec, make_account(model_score=0.3))
    assert "credentials_admitted" in a.fired() and a.band is RiskBand.HIGH and a.severe


@pytest.mark.parametrize(
    ("text", "admitted"), [("嗯", False), ("嗯嗯。", False), ("有", True), ("有的", True)]
)
def test_a_bare_backchannel_to_the_credentials_question_is_doubt_not_an_admission(
    scorer: RiskScorer, text: str, admitted: bool
) -> None:
    """ "嗯" may be "go on" or "huh?": it routes the question as a yes but admits nothing
    (a reviewer sees the doubt); "有" to "有没有…告诉过别人" is a yes (the model read it
    as no)."""
    intent = intent_rules.match(text, "card_custody")
    assert intent is not None and intent.intent is I.AFFIRM
    answer = ans("card_custody", text, node="credentials_check")
    answer = dataclasses.replace(answer, nlu=dataclasses.replace(answer.nlu, intent=intent))
    a = scorer.score(record(answer, *LEGIT), make_account(model_score=0.3))
    assert ("credentials_admitted" in a.fired()) is admitted
    assert ("credentials_unclear" in a.fired()) is not admitted
    assert a.severe is admitted and (a.band is RiskBand.HIGH) is admitted


def test_no_to_credentials_question_raises_nothing(scorer: RiskScorer) -> None:
    rec = record(ans("card_custody", "没有", I.DENY, "acts=deny", node="credentials_check"), *LEGIT)
    a = scorer.score(rec, make_account(model_score=0.3))
    assert not [h for h in a.hits if h.category != "legit"] and a.band is RiskBand.LOW


def test_explanation_carries_contribution_and_words(scorer: RiskScorer) -> None:
    text = "王强我不认识，是兼职群里让我转的"
    rec = record(
        ans("counterparty", text, I.INFORM, "counterparty=stranger", "funds=for_others"),
        ans("occupation", "大学生", I.INFORM, "acts=answer"),
    )
    a = scorer.score(rec, make_account(model_score=0.5))
    by = {h.feature: h for h in a.hits}
    weight = scorer.ruleset.features["counterparty_unknown"].weight
    assert by["counterparty_unknown"].contribution == weight
    assert by["counterparty_unknown"].evidence[0].answer == text
    assert by["collect_for_others"].evidence[0].match.startswith("funds=for_others (0.90)")
    assert "王强我不" in by["collect_for_others"].evidence[0].match  # the words that carried it
    contributions = [abs(h.contribution) for h in a.hits]
    assert contributions == sorted(contributions, reverse=True)


def test_amount_mismatch_with_the_flagged_transaction(scorer: RiskScorer) -> None:
    rec = record(
        ans("fund_source", "就转了八百块", I.INFORM, ents=((L.AMOUNT, "800"),)),
        ans("occupation", "司机"),
    )
    assert "amount_mismatch" in scorer.score(rec, make_account()).fired()
    rec = record(
        ans("fund_source", "这五万块是我的积蓄", I.INFORM, ents=((L.AMOUNT, "50000"),)),
        ans("occupation", "司机"),
    )
    assert "amount_mismatch" not in scorer.score(rec, make_account()).fired()


def test_a_large_transfer_from_someone_they_cannot_name(scorer: RiskScorer) -> None:
    unknown = ans(
        "counterparty", "不知道是谁打的", I.UNCLEAR, "acts=dont_know", "counterparty=unknown"
    )
    rec = record(unknown, *LEGIT[2:])
    assert "large_unknown_counterparty" in scorer.score(rec, make_account()).fired()
    named = ans("counterparty", "是我表哥", I.INFORM, "counterparty=named")
    assert (
        "large_unknown_counterparty"
        not in scorer.score(record(unknown, named), make_account()).fired()
    )


def test_unknown_reading_values_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text(
        RULESET.read_text(encoding="utf-8").replace(
            "reading: [custody=lent]", "reading: [custody=borrowed]"
        ),
        encoding="utf-8",
    )
    with pytest.raises(SourceFileError) as exc:
        load_ruleset(bad)
    assert "custody=borrowed" in str(exc.value.errors[0])


def test_no_band_without_enough_answers_or_for_unreached_outcomes(scorer: RiskScorer) -> None:
    assert scorer.score(record(LEGIT[0], outcome=Outcome.HUNG_UP), make_account()).band is None
    assert scorer.score(record(outcome=Outcome.VOICEMAIL), make_account()).band is None


def test_score_is_monotonic_in_the_prior(scorer: RiskScorer) -> None:
    scores = [
        scorer.score(record(*LEGIT), make_account(model_score=p)).score
        for p in (0.1, 0.3, 0.5, 0.7, 0.9)
    ]
    assert scores == sorted(scores) and len(set(scores)) == 5


def test_broken_ruleset_is_refused_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text(
        RULESET.read_text(encoding="utf-8").replace(
            "weight: 2.5\n    min_band: high\n    reading: [custody=lent]",
            "weight: lots\n    min_band: high\n    reading: [custody=lent]",
        ),
        encoding="utf-8",
    )
    with pytest.raises(SourceFileError) as exc:
        load_ruleset(bad)
    err = exc.value.errors[0]
    assert (
        err.field == "features.custody_lent.weight"
        and "weight: lots" in bad.read_text(encoding="utf-8").splitlines()[err.line - 1]
    )


def test_an_unexplained_doubt_keeps_a_legitimate_story_at_medium(scorer: RiskScorer) -> None:
    """Wages claimed by someone without a job: the rest of the story does not explain it."""
    rec = record(
        *LEGIT[:2],
        ans(
            "occupation",
            "我没工作，在家待着",
            I.INFORM,
            "acts=answer",
            ents=((L.OCCUPATION, "无业"),),
        ),
    )
    a = scorer.score(rec, make_account(model_score=0.3))
    assert "earnings_without_work" in a.fired() and a.band is RiskBand.MEDIUM
    assert "keeps band at least medium" in a.band_reason
    assert scorer.score(record(*LEGIT), make_account(model_score=0.3)).band is RiskBand.LOW


def test_the_banks_counterparty_not_known(scorer: RiskScorer) -> None:
    said = "王强？不认识，没听过这个人"
    disowned = ans("counterparty", said, I.INFORM, "acts=dont_know", ents=((L.PERSON, "王强"),))
    a = scorer.score(record(*LEGIT, disowned), make_account())
    assert "counterparty_disowned" in a.fired() and a.band is not RiskBand.LOW
    # A buyer met online is a stranger, and that is no doubt for a seller.
    buyer = ans(
        "counterparty",
        "王强是闲鱼上买我车的，不认识",
        I.INFORM,
        "counterparty=stranger",
        "funds=asset_sale",
        ents=((L.PERSON, "王强"),),
    )
    fired = scorer.score(record(*LEGIT, buyer), make_account()).fired()
    assert not {"counterparty_disowned", "counterparty_unknown"} & fired
