from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core.vocab import EntityLabel
from nlu.entities import Candidate, EntityExtractor, iso_date, resolve_overlaps
from nlu.entity_eval import load_split, score
from nlu.normalize import normalize
from nlu.types import Entity, NluContext

REPO_ROOT = Path(__file__).resolve().parents[2]
PERSONAS = Path(os.environ.get("BOT_SHARED_DIR", REPO_ROOT.parent / "shared")) / "personas"

# Held-out figures measured when the set was frozen (recall 0.98, precision 0.98),
# minus a margin so small rule changes do not break the build but regressions do.
HELDOUT_RECALL_FLOOR = 0.90
HELDOUT_PRECISION_FLOOR = 0.90


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor()


def _extract(
    extractor: EntityExtractor, raw: str, names: tuple[str, ...] = ()
) -> tuple[Entity, ...]:
    return extractor.extract(normalize(raw), NluContext(known_names=names))


def _pairs(entities: tuple[Entity, ...], *, negated: bool | None = False) -> set[tuple[str, str]]:
    return {(e.label.value, e.value) for e in entities if negated is None or e.negated == negated}


# ----------------------------------------------------------------- per-label cases


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # relationship: canonical values
        ("这笔钱是我爸爸转给我的", {("relationship", "父亲")}),
        ("我父亲给的", {("relationship", "父亲")}),
        ("卡在我老婆那里", {("relationship", "妻子")}),
        ("是我爱人转的", {("relationship", "妻子")}),
        ("我老公拿去用了", {("relationship", "丈夫")}),
        ("卡借给同学了", {("relationship", "同学")}),
        ("是网上认识的", {("relationship", "网友")}),
        ("不认识的人打来的钱", {("relationship", "陌生人")}),
        ("我发到朋友圈了", set()),  # 朋友圈 is WeChat Moments, not a friend
        # location: surface value, composite split
        ("我在天河区上班", {("location", "天河区")}),
        (
            "广州天河的一家物流公司",
            {("location", "广州"), ("location", "天河"), ("employer", "物流公司")},
        ),
        ("在東莞讀書", {("location", "东莞")}),
        ("我在深圳市龙华区", {("location", "深圳市"), ("location", "龙华区")}),
        ("湖南人，在番禺打工", {("location", "湖南"), ("location", "番禺")}),
        ("世界和平", set()),  # 和平 (a county) only with its suffix
        ("河源和平县", {("location", "河源"), ("location", "和平县")}),
        ("我要去中山路办事", set()),
        # occupation
        ("我是仓库管理员", {("occupation", "仓库管理员")}),
        ("我是送外卖的", {("occupation", "外卖员")}),
        ("打零工的", {("occupation", "零工")}),
        ("我现在没有工作", {("occupation", "无业")}),
        ("我在厂里当质检员", {("occupation", "质检员")}),
        ("我是高中数学老师", {("occupation", "老师")}),
        ("他说他是银行客服", set()),  # someone else's claimed job
        ("我是客服", {("occupation", "客服")}),
        # employer
        ("我在一家电子厂上班", {("employer", "电子厂")}),
        ("我在医院上班", {("employer", "医院")}),
        ("在那边一个家具厂做油漆工", {("employer", "家具厂"), ("occupation", "油漆工")}),
        ("我在第一人民医院当护士", {("employer", "第一人民医院"), ("occupation", "护士")}),
        ("我去银行办的卡", set()),
        ("这是我的银行卡", set()),
        ("手机银行是我自己在用", set()),
        ("我们公司发的", set()),  # 我们公司 is not an employer
        # amount
        ("给了我八百块", {("amount", "800")}),
        ("这五万块是我的", {("amount", "50000")}),
        ("转了4.98万", {("amount", "49800")}),
        ("一共四万九千八", {("amount", "49800")}),
        ("转了1,200元", {("amount", "1200")}),
        ("一天三百", {("amount", "300")}),
        ("一千二块钱", {("amount", "1200")}),
        ("三点五万", {("amount", "35000")}),
        ("有三百多人", set()),
        ("一天走一万步", set()),
        ("我们一块去的", set()),
        ("第三百个", set()),
        ("给了几千块", set()),  # vague amounts are skipped
        # date
        ("2026-11-18那笔", {("date", "2026-11-18")}),
        ("2026年11月18号转的", {("date", "2026-11-18")}),
        ("11月18号转的", {("date", "--11-18")}),
        ("十一月十八日", {("date", "--11-18")}),
        ("昨天转的", {("date", "昨天")}),
        ("上周三转的", {("date", "上周三")}),
        ("13月40号", set()),
        # pii
        ("我手机号13912345678", {("phone", "+8613912345678")}),
        ("电话+86 139 1234 5678", {("phone", "+8613912345678")}),
        ("身份证44010619900101123x", {("id_number", "44010619900101123X")}),
        ("卡号6225 8801 0000 0001", {("card_number", "6225880100000001")}),
    ],
)
def test_entities(extractor: EntityExtractor, text: str, expected: set[tuple[str, str]]) -> None:
    assert _pairs(_extract(extractor, text), negated=None) == expected


@pytest.mark.parametrize(
    ("text", "purpose"),
    [
        ("这是工资卡，每个月发工资", "salary"),
        ("平时自己买东西花", "daily_spending"),
        ("主要是存钱和买理财", "savings_investment"),
        ("我自己做生意收款用", "business"),
        ("进货用的", "business"),
        ("我开了一家五金店", "business"),
        ("用来还房贷", "loan_repayment"),
        ("还了信用卡", "loan_repayment"),
        ("帮他收一下钱", "collect_for_others"),
        ("网上有人让我帮忙走流水", "collect_for_others"),
        ("我再按要求转出去", "collect_for_others"),
        ("他们让我刷丹", "collect_for_others"),  # homophone of 刷单
        ("帮人跑芬", "collect_for_others"),  # homophone of 跑分
        ("就是帮忙刷点流水", "collect_for_others"),
        ("是我朋友的货款", "collect_for_others"),  # someone else's money
        ("他的工资打到我卡上", "collect_for_others"),
    ],
)
def test_purpose(extractor: EntityExtractor, text: str, purpose: str) -> None:
    values = {e.value for e in _extract(extractor, text) if e.label == EntityLabel.PURPOSE}
    assert purpose in values
    if purpose == "collect_for_others":
        assert values == {purpose}


@pytest.mark.parametrize(
    ("text", "purposes"),
    [
        ("这个月工资还没发", {"salary"}),  # not 月供 (yue gong) across the word boundary
        ("我是程序员", set()),
        ("收完就转给他了", set()),
        ("我是大夫", set()),  # 大夫 reads dai fu like 代付
        ("你好，哪位", set()),
    ],
)
def test_no_spurious_purpose(extractor: EntityExtractor, text: str, purposes: set[str]) -> None:
    values = {e.value for e in _extract(extractor, text) if e.label == EntityLabel.PURPOSE}
    assert values == purposes


@pytest.mark.parametrize(
    ("text", "label", "value", "negated"),
    [
        ("我没有帮别人刷单", "purpose", "collect_for_others", True),
        ("这钱不是工资，是我卖车的钱", "purpose", "salary", True),
        ("我从来没有把卡借给朋友", "relationship", "朋友", True),
        ("卡没有卖，只是借给朋友了", "relationship", "朋友", False),
        ("王强我不认识", "person", "王强", False),
        ("不是借给朋友的，是我自己用", "relationship", "朋友", True),
        ("我现在没有工作", "occupation", "无业", False),  # contains its own negator
        ("我不是学生", "occupation", "学生", True),
    ],
)
def test_negation_flag(
    extractor: EntityExtractor, text: str, label: str, value: str, negated: bool
) -> None:
    found = [
        e
        for e in _extract(extractor, text, ("王强",))
        if (e.label.value, e.value) == (label, value)
    ]
    assert found, f"{label}={value} not found in {text}"
    assert all(e.negated is negated for e in found)


@pytest.mark.parametrize(
    ("text", "names", "persons"),
    [
        ("王强我不认识", ("王强",), {"王强"}),
        ("王墙我不认识", ("王强",), {"王强"}),  # ASR homophone of a known name
        ("我爸爸吴建国转的", (), {"吴建国"}),
        ("吴建国是我父亲", (), {"吴建国"}),
        ("我叫何丽", (), {"何丽"}),
        ("他叫张勇，是我同事", (), {"张勇"}),
        ("转给王强了", (), {"王强"}),
        ("我朋友欧阳娜娜借的", (), {"欧阳娜娜"}),
        ("钱是给王强转的", (), {"王强"}),
        # conservative: no name without a cue, no common words
        ("卡给钱老板了", (), set()),
        ("给钱买东西", (), set()),
        ("我不知道他们叫什么", (), set()),
        ("卡给我男朋友了", (), set()),
        ("我朋友说可以", (), set()),
        ("是我邻居李阿姨借的", (), set()),
        ("王强是个好人", (), {"王强"}),  # no cue, but LAC knows a name
        ("我觉得这个人挺好", (), set()),
    ],
)
def test_person(
    extractor: EntityExtractor, text: str, names: tuple[str, ...], persons: set[str]
) -> None:
    found = {e.value for e in _extract(extractor, text, names) if e.label == EntityLabel.PERSON}
    assert found == persons


# ------------------------------------------------------------------ invariants


def test_offsets_point_into_the_normalised_text(extractor: EntityExtractor) -> None:
    text = normalize("這筆錢是我爸爸吳建國轉給我進貨用的，一共八百塊")
    entities = extractor.extract(text, NluContext())
    assert entities
    for e in entities:
        assert text[e.start : e.end] == e.text


def test_entities_overlap_only_where_a_place_sits_inside_a_name() -> None:
    """Spans never overlap, except a place inside an employer or a longer place, which
    is a place said too (洛阳轴承厂 names 洛阳; 中山大学 does not name 中山)."""
    loc = Candidate(EntityLabel.LOCATION, 0, 2, "洛阳", 3)
    factory = Candidate(EntityLabel.EMPLOYER, 0, 5, "洛阳轴承厂", 2)
    assert resolve_overlaps([loc, factory]) == [factory, loc] or resolve_overlaps(
        [loc, factory]
    ) == [loc, factory]
    occ = Candidate(EntityLabel.OCCUPATION, 3, 5, "工人", 3)
    assert resolve_overlaps([factory, occ]) == [factory]


def test_extracted_places_inside_employers(extractor: EntityExtractor) -> None:
    text = normalize("俺退休了，原先在洛阳轴承厂上班，干了三十多年")
    found = {(e.label.value, e.value) for e in extractor.extract(text, NluContext())}
    assert {("location", "洛阳"), ("employer", "洛阳轴承厂")} <= found
    text = normalize("我在广州天河区的一家物流公司做仓库管理员，工资每月五千块")
    spans = sorted(
        (e.start, e.end, e.label)
        for e in extractor.extract(text, NluContext())
        if e.label not in ("purpose", "location")
    )
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_resolve_overlaps_longest_then_priority() -> None:
    loc = Candidate(EntityLabel.LOCATION, 0, 2, "中山", 3)
    emp = Candidate(EntityLabel.EMPLOYER, 0, 4, "中山大学", 2)
    per = Candidate(EntityLabel.PERSON, 0, 2, "中山", 1)
    purpose = Candidate(EntityLabel.PURPOSE, 1, 3, "salary", 2)
    assert resolve_overlaps([loc, emp, purpose]) == [emp, purpose]
    assert resolve_overlaps([per, loc]) == [loc]
    assert resolve_overlaps([loc, loc]) == [loc]


@pytest.mark.parametrize(
    ("year", "month", "day", "iso"),
    [
        (2026, 11, 18, "2026-11-18"),
        (None, 3, 5, "--03-05"),
        (2026, 13, 1, None),
        (1200, 1, 1, None),
    ],
)
def test_iso_date(year: int | None, month: int, day: int, iso: str | None) -> None:
    assert iso_date(year, month, day) == iso


def test_empty_text(extractor: EntityExtractor) -> None:
    assert extractor.extract("", NluContext()) == ()


def test_custom_data_dir(tmp_path: Path) -> None:
    from nlu.data import data_dir

    for f in data_dir().glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    occupations = yaml.safe_load((tmp_path / "occupations.yaml").read_text(encoding="utf-8"))
    occupations["驯兽师"] = ["驯兽师", "驯兽员"]
    (tmp_path / "occupations.yaml").write_text(
        yaml.safe_dump(occupations, allow_unicode=True), encoding="utf-8"
    )
    custom = EntityExtractor(tmp_path)
    assert ("occupation", "驯兽师") in _pairs(_extract(custom, "他是驯兽员"))


# -------------------------------------------------------------- personas + eval


def _persona_cases() -> list[Any]:
    if not PERSONAS.is_dir():
        return []
    cases = []
    for path in sorted(PERSONAS.glob("*.yaml")):
        persona = yaml.safe_load(path.read_text(encoding="utf-8"))
        if persona.get("expected", {}).get("entities"):
            cases.append(pytest.param(persona, id=persona["id"]))
    return cases


@pytest.mark.skipif(not PERSONAS.is_dir(), reason="shared personas not available")
@pytest.mark.parametrize("persona", _persona_cases())
def test_public_personas(extractor: EntityExtractor, persona: dict[str, Any]) -> None:
    account = persona["account"]
    names = tuple(
        n for n in (account.get("name"), (account.get("txn") or {}).get("counterparty")) if n
    )
    found: set[tuple[str, str]] = set()
    for answer in persona["answers"].values():
        if answer:
            for e in _extract(extractor, answer, names):
                if not e.negated:
                    found |= {(e.label.value, e.value), (e.label.value, e.text)}
    for label, value in persona["expected"]["entities"].items():
        assert (label, str(value)) in found, f"{label}={value}"


def test_heldout_scores_stay_above_floor(extractor: EntityExtractor) -> None:
    report = score(extractor, "heldout", load_split("heldout"))
    assert report.n >= 80
    assert report.overall.recall >= HELDOUT_RECALL_FLOOR, report.errors
    assert report.overall.precision >= HELDOUT_PRECISION_FLOOR, report.errors


def test_eval_sets_are_large_enough() -> None:
    assert len(load_split("tune")) + len(load_split("heldout")) >= 150
