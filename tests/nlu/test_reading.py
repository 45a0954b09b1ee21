"""The answer reading: schema, features, exact checks, intent resolution, the corpus
loader, training round trip, and the shipped model on contrasts it must get right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.vocab import EntityLabel, Intent
from nlu.analyzer import Analyzer
from nlu.normalize import normalize
from nlu.reading.corpus import CorpusErrors, load_dir, load_file
from nlu.reading.features import HOLDER_MARK, PERSON_MARK, features, mask_names, surface
from nlu.reading.model import DEFAULT_MODEL_DIR, ReadingModel
from nlu.reading.reader import (
    Reader,
    handed_to_someone,
    other_object_only,
    purpose_entities,
    resolve_intent,
)
from nlu.reading.schema import ALL_LABELS, Reading, Slot, label_key
from nlu.reading.train import evaluate, train
from nlu.types import Entity, IntentScore, NluContext

# -- schema and features (pure) -----------------------------------------------------------


def test_flat_labels_name_field_and_value() -> None:
    assert label_key("custody", "lent") == "custody=lent"
    assert {"acts=confirm", "holder=family", "funds=task_rebate"} <= set(ALL_LABELS)
    assert len(ALL_LABELS) == len(set(ALL_LABELS))
    r = Reading((Slot("acts=confirm", 0.9), Slot("holder=self", 0.8), Slot("funds=salary", 0.7)))
    assert r.acts == {"confirm"} and r.holder == "self" and r.funds == {"salary"}
    assert r.counterparty is None and not r.custody


def test_negated_ngrams_are_distinct_features() -> None:
    lent = set(features("card_custody", "借给朋友了"))
    never = set(features("card_custody", "从来没借给朋友"))
    assert "借给" in lent and "借给" not in never and "~借给" in never
    heard = set(features("card_custody", "听说有人卖卡"))
    assert "^卖卡" in heard and "卖卡" not in heard


def test_topic_conjoined_features_and_their_surface() -> None:
    feats = features("identity", "是")
    assert "identity#是" in feats and "@identity" in feats
    assert surface("card_custody#~借给") == "借给" and surface("<是我") == "是我"


def test_names_are_masked_as_holder_or_someone_else() -> None:
    text = mask_names("李建国？不认识，我是王芳", holder=["李建国"], others=["王芳", "李建"])
    assert text == f"{HOLDER_MARK}？不认识，我是{PERSON_MARK}"


# -- exact checks (pure) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "other"),
    [
        ("车卖给邻居了，卖了三万", True),
        ("那十万是借给朋友周转的", True),
        ("铺面租出去了", True),
        ("卡卖给收卡的了", False),
        ("车卖了，卡也借给他开车用了", False),  # the account is named
        ("借给他用了", False),  # no other object: the card is what is being talked about
    ],
)
def test_another_object_of_a_sale(text: str, other: bool) -> None:
    assert other_object_only(normalize(text)) is other


@pytest.mark.parametrize(
    ("text", "handed"),
    [
        ("密码只有我自己知道", False),
        ("验证码从来不给别人", False),
        ("手机银行是我自己用的", False),
        ("验证码我念给他了", True),
        ("密码我老公也知道", True),
        ("他让我共享屏幕", True),
    ],
)
def test_credentials_need_someone_they_went_to(text: str, handed: bool) -> None:
    assert handed_to_someone(normalize(text)) is handed


def _reading(*labels: str, confidence: float = 0.9) -> Reading:
    return Reading(tuple(Slot(label, confidence) for label in labels), "t")


def test_a_confirmation_mixed_with_a_question_confirms() -> None:
    asked = IntentScore(Intent.ASK_REPEAT, 0.9, "rule")
    got = resolve_intent(asked, _reading("acts=confirm", "acts=ask_who"), "identity")
    assert got.intent is Intent.AFFIRM and got.source == "reading"


def test_the_stronger_of_two_conflicting_identity_readings_wins() -> None:
    both = Reading((Slot("acts=confirm", 0.9), Slot("acts=third_party", 0.6)))
    assert resolve_intent(IntentScore(Intent.INFORM, 0.5, "model"), both, "identity").intent is (
        Intent.AFFIRM
    )
    both = Reading((Slot("acts=confirm", 0.55), Slot("acts=third_party", 0.95)))
    assert resolve_intent(IntentScore(Intent.AFFIRM, 0.9, "rule"), both, "identity").intent is (
        Intent.THIRD_PARTY
    )


def test_an_announcement_rule_is_final() -> None:
    rule = IntentScore(Intent.VOICEMAIL, 1.0, "rule")
    assert resolve_intent(rule, _reading("acts=confirm"), "identity") == rule


def test_custody_words_without_a_custody_reading_inform() -> None:
    lent_rule = IntentScore(Intent.CUSTODY_LENT, 0.9, "rule")
    got = resolve_intent(lent_rule, _reading("acts=answer", "holder=self"), "card_custody")
    assert got.intent is Intent.CUSTODY_SELF
    got = resolve_intent(lent_rule, _reading("acts=answer", "funds=asset_sale"), "card_custody")
    assert got.intent is Intent.INFORM


def test_a_story_about_a_meeting_is_not_a_callback() -> None:
    busy = IntentScore(Intent.BUSY_CALLBACK, 0.9, "rule")
    got = resolve_intent(busy, _reading("acts=answer", "funds=scam_payment"), "fund_source")
    assert got.intent is Intent.INFORM
    assert resolve_intent(busy, _reading("acts=busy"), "fund_source") == busy


def test_purposes_follow_the_uses_of_money() -> None:
    reading = Reading((Slot("funds=for_others", 0.9, ("帮人收",)), Slot("funds=salary", 0.8)))
    text = "帮人收钱，也发工资"
    found = purpose_entities(reading, text, "fund_source", ())
    assert [(e.value, e.text) for e in found] == [
        ("collect_for_others", "帮人收"),
        ("salary", text),
    ]
    keyword = Entity(EntityLabel.PURPOSE, "工资", "salary", 7, 9)
    assert [e.value for e in purpose_entities(reading, text, "fund_source", (keyword,))] == [
        "collect_for_others"
    ]
    assert purpose_entities(reading, text, "identity", ()) == ()


# -- corpus, training, persistence -----------------------------------------------------------

ROW = {
    "topic": "card_custody",
    "text": "卡在我这",
    "acts": ["answer"],
    "holder": "self",
    "custody": [],
    "funds": [],
    "counterparty": None,
    "entities": {},
}


def _write(path: Path, rows: list[dict[str, object] | str]) -> None:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_bad_rows_are_reported_with_file_and_line_and_the_rest_load(tmp_path: Path) -> None:
    _write(
        tmp_path / "a.jsonl",
        [
            ROW,
            "{not json",
            {**ROW, "holder": "neighbour"},
            {**ROW, "acts": []},
            {**ROW, "text": "好"},
        ],
    )
    errors = CorpusErrors()
    rows = load_file(tmp_path / "a.jsonl", errors)
    assert [r.text for r in rows] == ["卡在我这", "好"]
    assert [m.split(":")[1] for m in errors.messages] == ["2", "3", "4"]
    assert "neighbour" in errors.messages[1] and "self" in errors.messages[1]
    with pytest.raises(ValueError, match=r"a\.jsonl:2"):
        load_file(tmp_path / "a.jsonl")


def test_heldout_files_are_never_training_files(tmp_path: Path) -> None:
    _write(tmp_path / "train.jsonl", [ROW])
    _write(tmp_path / "heldout_x.jsonl", [{**ROW, "text": "卡在我老婆那"}])
    assert [r.text for r in load_dir(tmp_path)] == ["卡在我这"]
    assert [r.text for r in load_dir(tmp_path, heldout=True)] == ["卡在我老婆那"]


def test_identity_names_are_masked_in_training_rows(tmp_path: Path) -> None:
    row = {**ROW, "topic": "identity", "text": "我是刘洋", "acts": ["confirm"], "holder": None}
    _write(tmp_path / "t.jsonl", [{**row, "entities": {"person": ["刘洋"]}}])
    assert load_dir(tmp_path)[0].text == f"我是{HOLDER_MARK}"


def _toy_rows(tmp_path: Path) -> list[dict[str, object]]:
    kept = ["卡在我这", "卡我自己拿着", "一直在我钱包里", "在我手上", "我自己保管"]
    lent = ["借给朋友了", "朋友拿去用了", "借给同事用", "给表哥用了", "借他用几天"]
    rows: list[dict[str, object]] = [{**ROW, "text": t} for t in kept]
    rows += [{**ROW, "text": t, "holder": "other", "custody": ["lent"]} for t in lent]
    return rows


def test_training_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    _write(tmp_path / "toy.jsonl", _toy_rows(tmp_path))
    rows = load_dir(tmp_path)
    model = train(rows, c=8.0, version="toy-1")
    again = train(rows, c=8.0, version="toy-1")
    assert model.read("借给邻居了", "card_custody") == again.read("借给邻居了", "card_custody")
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "vocab.json",
        "weights.safetensors",
    ]  # nothing pickled
    loaded = ReadingModel.load(tmp_path / "m")
    for text in ("借给邻居了", "卡在我手上呢"):
        a, b = model.read(text, "card_custody"), loaded.read(text, "card_custody")
        assert a.labels() == b.labels()
        assert all(
            abs(x.confidence - y.confidence) < 0.01 for x, y in zip(a.slots, b.slots, strict=True)
        )
    report = evaluate(loaded, rows)
    assert report.n == 10 and report.per_label["custody=lent"].support == 5


# -- the shipped model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader.load(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(None, reading_model_dir=DEFAULT_MODEL_DIR)


def _read(reader: Reader, text: str, topic: str) -> Reading:
    return reader.read(normalize(text), topic)


def test_the_shipped_model_reads_what_was_handed_over(reader: Reader) -> None:
    assert (
        "custody=lent" in _read(reader, "去年把卡借给我一个哥们用了俩月", "card_custody").labels()
    )
    assert not _read(reader, "我那辆面包车卖给隔壁村的了", "card_custody").custody
    assert not _read(reader, "我的密码谁也不知道，验证码也不给人", "card_custody").custody


def test_the_shipped_model_hears_a_victim_without_keywords(reader: Reader) -> None:
    got = _read(
        reader, "群里有个老师带着我们买一个平台的产品，说收益翻倍，我就转了两万过去", "fund_source"
    )
    assert got.funds & {"stranger_investment", "scam_payment"}


def test_a_mixed_confirmation_confirms_through_the_analyzer(analyzer: Analyzer) -> None:
    context = NluContext(topic="identity", known_names=("赵桂兰",))
    result = analyzer.analyze("喂？对对对，是我，你是哪里啊？", context)
    assert result.intent.intent is Intent.AFFIRM
    assert "acts=ask_who" in result.reading.labels()
    stranger = analyzer.analyze("赵桂兰？没这个人，你打错了吧", context)
    assert stranger.intent.intent is not Intent.AFFIRM


@pytest.mark.slow
def test_bot_nlu_train_takes_reviewers_corrections(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli.app import app
    from tests.conftest import SHARED

    feedback = tmp_path / "reading-corrections.jsonl"
    _write(feedback, [{**ROW, "text": "卡一直锁在我单位柜子里", "acts": ["answer"]}, "{broken"])
    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        [
            "nlu", "train", "--no-intent", "--reading-out", str(out),
            "--feedback", str(feedback), "--eval-personas", str(SHARED / "personas"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "training_report.json").read_text(encoding="utf-8"))
    assert report["n_feedback"] == 1 and report["heldout"]["n"] > 0
    assert report["corpus_errors"] and "reading-corrections.jsonl:2" in report["corpus_errors"][0]
    assert report["personas"]["n"] == 10 and report["personas"]["outcome_accuracy"] is not None
    assert ReadingModel.load(out).version == report["version"]
