from __future__ import annotations

import timeit

import pytest

from nlu.phonetic import KeyphraseMatcher, PhraseMatch, char_readings, fold_syllable

PHRASES = {
    "collect": ["跑分", "刷单", "走流水", "代收"],
    "credentials": ["验证码", "密码"],
    "salary": ["工资", "发工资"],
    "loan": ["月供", "还款"],
    "card": ["卡"],
}


@pytest.fixture(scope="module")
def matcher() -> KeyphraseMatcher:
    return KeyphraseMatcher(PHRASES)


def _keys(matches: list[PhraseMatch]) -> list[tuple[str, str, str]]:
    return [(m.key, m.phrase, m.via) for m in matches]


@pytest.mark.parametrize(
    ("text", "key", "phrase", "via"),
    [
        ("我帮人跑分", "collect", "跑分", "char"),
        ("我帮人跑芬", "collect", "跑分", "pinyin"),
        ("他让我刷丹", "collect", "刷单", "pinyin"),
        ("验正码我发给对方了", "credentials", "验证码", "pinyin"),
        ("验证码我发给对方了", "credentials", "验证码", "char"),
        ("帮忙走流谁", "collect", "走流水", "pinyin"),
        ("还款", "loan", "还款", "char"),
    ],
)
def test_finds_characters_and_homophones(
    matcher: KeyphraseMatcher, text: str, key: str, phrase: str, via: str
) -> None:
    assert (key, phrase, via) in _keys(matcher.find(text))


def test_offsets_are_character_offsets(matcher: KeyphraseMatcher) -> None:
    text = "嗯，验正码我发给对方了"
    (m,) = [m for m in matcher.find(text) if m.key == "credentials"]
    assert (m.start, m.end) == (2, 5)
    assert text[m.start : m.end] == "验正码"


def test_single_character_phrases_match_characters_only(matcher: KeyphraseMatcher) -> None:
    assert [m.key for m in matcher.find("我的卡")] == ["card"]
    assert matcher.find("咖啡") == []  # 咖 reads ka like 卡


def test_homophone_sharing_no_character_is_not_matched(matcher: KeyphraseMatcher) -> None:
    # 泡粉 reads pao fen like 跑分 but shares no character with it.
    assert matcher.find("我去泡粉") == []


def test_real_word_beats_cross_boundary_homophone(matcher: KeyphraseMatcher) -> None:
    # 月工资 contains 月工 (yue gong, like 月供); 工资 is the real word.
    assert _keys(matcher.find("这个月工资还没发")) == [("salary", "工资", "char")]


def test_pinyin_can_be_switched_off() -> None:
    m = KeyphraseMatcher(PHRASES, pinyin=False)
    assert m.find("我帮人跑芬") == []
    assert _keys(m.find("我帮人跑分")) == [("collect", "跑分", "char")]


def test_find_prefers_longest_and_find_all_keeps_overlaps(matcher: KeyphraseMatcher) -> None:
    assert _keys(matcher.find("按时发工资")) == [("salary", "发工资", "char")]
    assert {m.phrase for m in matcher.find_all("按时发工资")} == {"发工资", "工资"}


def test_same_phrase_under_two_keys_reports_both() -> None:
    m = KeyphraseMatcher({"a": ["理财"], "b": ["理财"]})
    assert sorted(x.key for x in m.find("买理财")) == ["a", "b"]


def test_polyphones_in_text_still_match() -> None:
    m = KeyphraseMatcher({"bank": ["银行"], "loan": ["还贷"]})
    assert [x.key for x in m.find("去银航办")] == ["bank"]  # 航 hang = 行 hang
    assert "huan" in char_readings("还")
    assert "ti" not in char_readings("是")  # archaic readings are not used


def test_latin_and_digits_read_as_themselves() -> None:
    m = KeyphraseMatcher({"app": ["手机APP"]})
    assert [x.via for x in m.find("手机app")] == ["pinyin"]  # case folded, not identical


@pytest.mark.parametrize(
    ("syllable", "folded"),
    [("zhi", "zi"), ("sheng", "sen"), ("chuang", "cuan"), ("ling", "lin"), ("ma", "ma")],
)
def test_fuzzy_folding(syllable: str, folded: str) -> None:
    assert fold_syllable(syllable) == folded


def test_fuzzy_matcher_accepts_retroflex_confusion() -> None:
    strict = KeyphraseMatcher({"k": ["收款"]})
    fuzzy = KeyphraseMatcher({"k": ["收款"]}, fuzzy=True)
    assert strict.find("收宽") != []
    assert strict.find("sou款") == []
    assert fuzzy.find("搜款") != []  # sou ~ shou


def test_empty_text_and_empty_matcher() -> None:
    assert KeyphraseMatcher({}).find("随便说点什么") == []
    assert KeyphraseMatcher(PHRASES).find("") == []


def test_speed_is_well_under_a_millisecond() -> None:
    phrases = {
        f"k{i}": [f"{a}{b}" for a in "工资理财生意" for b in "款单码分钱"] for i in range(20)
    }
    m = KeyphraseMatcher(phrases)
    assert len(m) >= 500
    text = "这张卡我借给朋友用了，他说帮他收一下货款，过几天就还我。"
    per_call = timeit.timeit(lambda: m.find(text), number=200) / 200
    assert per_call < 1e-3  # measured ~0.04 ms; generous bound for slow CI machines
