"""Risk scoring: features, negation, homophones, bands, explanations."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.dialogue import Answer, DialogueRecord
from bot.core.scoring import RiskScorer, load_ruleset
from bot.core.vocab import EntityLabel as L
from bot.core.vocab import Intent as I
from bot.core.vocab import Outcome, RiskBand
from bot.core.yamlsource import SourceFileError
from nlu.types import Entity, IntentScore, NluResult
from tests.conftest import TEMPLATES, make_account

RULESET = TEMPLATES / "rulesets" / "default.yaml"


@pytest.fixture(scope="module")
def scorer() -> RiskScorer:
    return RiskScorer(load_ruleset(RULESET))


def ans(
    topic: str, text: str, intent: I = I.INFORM, *ents: tuple[L, str], node: str | None = None
) -> Answer:
    entities = tuple(Entity(label, v, v, text.find(v), text.find(v) + len(v)) for label, v in ents)
    return Answer(
        node or topic, topic, NluResult(text, text, IntentScore(intent, 0.9, "rule"), entities)
    )


def record(
    *answers: Answer, outcome: Outcome = Outcome.COMPLETED, refusals: int = 0
) -> DialogueRecord:
    return DialogueRecord("s@v1", "x", outcome=outcome, answers=list(answers), refusals=refusals)


LEGIT = [
    ans("card_purpose", "公司发工资用的工资卡", I.INFORM, (L.PURPOSE, "salary")),
    ans("card_custody", "卡一直是我自己保管的", I.CUSTODY_SELF),
    ans("occupation", "我在物流公司上班"),
]


def test_legitimate_answers_pull_a_medium_prior_down_to_low(scorer: RiskScorer) -> None:
    a = scorer.score(record(*LEGIT), make_account(model_score=0.55))
    assert a.band is RiskBand.LOW and a.score < 0.2
    assert {"salary", "custody_self"} <= a.fired()
    assert a.prior_contribution == pytest.approx(0.2007, abs=1e-3)


def test_lending_forces_high_whatever_the_prior(scorer: RiskScorer) -> None:
    rec = record(ans("card_custody", "这张卡我借给朋友用了", I.CUSTODY_LENT), *LEGIT[2:])
    a = scorer.score(rec, make_account(model_score=0.1))
    assert a.band is RiskBand.HIGH and "custody_lent" in a.fired() and not a.severe
    assert "custody_lent forces band high" in a.band_reason


def test_selling_the_card_is_severe(scorer: RiskScorer) -> None:
    rec = record(
        ans("card_custody", "卡和密码都卖给别人了", I.CUSTODY_SOLD), ans("occupation", "工厂上班")
    )
    a = scorer.score(rec, make_account(model_score=0.9))
    assert a.band is RiskBand.HIGH and a.severe


@pytest.mark.parametrize(
    "text",
    ["我从来没有把卡借给别人", "没卖过，也没租过", "我听说有人卖卡，我可没有卖卡"],
)
def test_negated_risk_words_do_not_fire(scorer: RiskScorer, text: str) -> None:
    a = scorer.score(
        record(ans("card_custody", text, I.CUSTODY_SELF), *LEGIT[2:]), make_account(model_score=0.3)
    )
    assert not {"custody_lent", "custody_sold"} & a.fired(), a.hits
    assert a.band is RiskBand.LOW


def test_homophone_of_a_risk_word_still_fires(scorer: RiskScorer) -> None:
    rec = record(ans("card_purpose", "网上有人让我帮忙刷丹，一天三百"), ans("occupation", "学生"))
    a = scorer.score(rec, make_account(model_score=0.5))
    hit = next(h for h in a.hits if h.feature == "money_moving_job")
    assert "刷丹≈刷单" in hit.evidence[0].match


def test_vague_answers_cap_at_medium_without_an_admission(scorer: RiskScorer) -> None:
    rec = record(
        ans("card_purpose", "忘了干嘛用的了", I.UNCLEAR),
        ans("fund_source", "记不太清了", I.UNCLEAR),
        ans("counterparty", "不太记得这个人了", I.UNCLEAR),
        ans("occupation", "打零工的"),
    )
    a = scorer.score(rec, make_account(model_score=0.66))
    assert a.score >= 0.7 and a.band is RiskBand.MEDIUM
    assert "capped at medium" in a.band_reason
    vague = next(h for h in a.hits if h.feature == "vague_answers")
    assert vague.hits == 3 and vague.contribution == pytest.approx(1.5)


def test_credentials_follow_up_answered_yes_is_an_admission(scorer: RiskScorer) -> None:
    rec = record(ans("card_custody", "有，告诉过", I.AFFIRM, node="credentials_check"), *LEGIT)
    a = scorer.score(rec, make_account(model_score=0.3))
    assert "credentials_admitted" in a.fired() and a.band is RiskBand.HIGH and a.severe


def test_no_to_credentials_question_is_not_a_custody_denial(scorer: RiskScorer) -> None:
    rec = record(ans("card_custody", "没有", I.DENY, node="credentials_check"), *LEGIT)
    assert "custody_denied" not in scorer.score(rec, make_account(model_score=0.3)).fired()


def test_explanation_carries_contribution_and_words(scorer: RiskScorer) -> None:
    rec = record(
        ans("counterparty", "王强我不认识，是兼职群里让我转的"), ans("occupation", "大学生")
    )
    a = scorer.score(rec, make_account(model_score=0.5))
    by = {h.feature: h for h in a.hits}
    assert by["unknown_counterparty"].contribution == 1.0
    assert by["unknown_counterparty"].evidence[0].answer == "王强我不认识，是兼职群里让我转的"
    assert by["money_moving_job"].evidence[0].match == "兼职群"
    assert a.hits[0].contribution >= a.hits[-1].contribution or abs(a.hits[0].contribution) >= abs(
        a.hits[-1].contribution
    )


def test_amount_mismatch_with_the_flagged_transaction(scorer: RiskScorer) -> None:
    rec = record(
        ans("fund_source", "就转了八百块", I.INFORM, (L.AMOUNT, "800")), ans("occupation", "司机")
    )
    assert "amount_mismatch" in scorer.score(rec, make_account()).fired()
    rec = record(
        ans("fund_source", "这五万块是我的积蓄", I.INFORM, (L.AMOUNT, "50000")),
        ans("occupation", "司机"),
    )
    assert "amount_mismatch" not in scorer.score(rec, make_account()).fired()


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
            "weight: 2.5\n    min_band: high\n    intents: [custody_lent]",
            "weight: lots\n    min_band: high\n    intents: [custody_lent]",
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
