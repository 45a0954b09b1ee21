"""Fast tests of the intent rules and the rules-only classifier (no torch)."""

from __future__ import annotations

import pytest

from bot.core.vocab import Intent
from nlu.intent import rules
from nlu.intent.classifier import IntentClassifier, excluded_intents

FIRES = [
    # voicemail / operator announcements, any topic
    ("identity", "您好，您拨打的用户暂时无法接听，请在提示音后留言", Intent.VOICEMAIL),
    ("default", "您拨打的电话已关机", Intent.VOICEMAIL),
    ("card_purpose", "对不起，您拨打的号码是空号", Intent.VOICEMAIL),
    ("identity", "the subscriber you dialed is not available", Intent.VOICEMAIL),
    ("identity", "您好，我是机主的智能助理，请问有什么事", Intent.VOICEMAIL),
    ("identity", "请稍后再拨", Intent.VOICEMAIL),
    ("fund_source", "您拨打的电话已关机", Intent.VOICEMAIL),
    # ask repeat
    ("identity", "你说什么？", Intent.ASK_REPEAT),
    ("fund_source", "再说一遍", Intent.ASK_REPEAT),
    ("occupation", "没听清", Intent.ASK_REPEAT),
    ("identity", "喂？喂？", Intent.ASK_REPEAT),
    ("card_custody", "啊？", Intent.ASK_REPEAT),
    # refusals
    ("card_purpose", "这是我的隐私，不想回答", Intent.REFUSE),
    ("counterparty", "不告诉你", Intent.REFUSE),
    ("occupation", "跟你有什么关系", Intent.REFUSE),
    ("fund_source", "我不方便说，别再打了", Intent.REFUSE),
    ("card_custody", "不说", Intent.REFUSE),
    ("occupation", "这是我的阴私", Intent.REFUSE),  # homophone of 隐私
    # busy / callback (not-convenient-NOW)
    ("identity", "我在开车，晚点再打", Intent.BUSY_CALLBACK),
    ("fund_source", "现在不方便，等会儿", Intent.BUSY_CALLBACK),
    ("occupation", "在开会不方便说话，散会了再说", Intent.BUSY_CALLBACK),
    ("default", "你明天再打吧", Intent.BUSY_CALLBACK),
    # identity answers
    ("identity", "他不在，我是他老婆", Intent.THIRD_PARTY),
    ("identity", "你找我儿子什么事", Intent.THIRD_PARTY),
    ("identity", "你打错了", Intent.WRONG_NUMBER),
    ("identity", "我不认识这个人", Intent.WRONG_NUMBER),
    ("identity", "是的", Intent.AFFIRM),
    ("identity", "嗯，我是", Intent.AFFIRM),
    ("identity", "不是", Intent.DENY),
    # custody
    ("card_custody", "卡和手机银行都是我自己保管", Intent.CUSTODY_SELF),
    ("card_custody", "我从来没有借给别人", Intent.CUSTODY_SELF),
    ("card_custody", "没有卖，卡在我手上", Intent.CUSTODY_SELF),
    ("card_custody", "没有告诉过别人密码", Intent.CUSTODY_SELF),
    ("card_custody", "卡给我老婆在用", Intent.CUSTODY_FAMILY),
    ("card_custody", "我妈帮我保管", Intent.CUSTODY_FAMILY),
    ("card_custody", "借给朋友用了", Intent.CUSTODY_LENT),
    ("card_custody", "没卖，就是借给同学用了", Intent.CUSTODY_LENT),
    ("card_custody", "卖给别人了", Intent.CUSTODY_SOLD),
    ("card_custody", "租出去了，一个月给我五百", Intent.CUSTODY_SOLD),
    ("card_custody", "不是借的，是卖给他了", Intent.CUSTODY_SOLD),
    ("card_custody", "验证码发给对方了", Intent.CREDENTIALS_SHARED),
    ("card_custody", "卡在我这，但是验正码发给对方了", Intent.CREDENTIALS_SHARED),  # 验正码 (ASR)
    ("card_custody", "密码告诉别人了", Intent.CREDENTIALS_SHARED),
    ("card_custody", "把手机银行密码告速了一个哥们", Intent.CREDENTIALS_SHARED),  # 告速 (ASR)
    # one-word answers
    ("card_custody", "没有", Intent.DENY),
    ("default", "好的好的", Intent.AFFIRM),
    ("fund_source", "不知道", Intent.UNCLEAR),
    ("counterparty", "记不清了", Intent.UNCLEAR),
    ("counterparty", "不认识", Intent.DENY),
]


@pytest.mark.parametrize(("topic", "text", "intent"), FIRES)
def test_rule_fires(topic: str, text: str, intent: Intent) -> None:
    score = rules.match(text, topic)
    assert score is not None, text
    assert score.intent is intent, text
    assert score.source == "rule"
    assert 0.5 < score.confidence <= 1.0


SILENT = [
    # substantive answers are the model's job
    ("fund_source", "是我卖二手车的钱"),
    ("card_purpose", "发工资用的"),
    ("occupation", "我在工厂上班"),  # 在上班 is not "busy" here
    ("counterparty", "他不说是干嘛的，我也没问"),  # 不说 inside a long answer
    ("fund_source", "钱是别人下午打过来的"),  # 打过来 without a callback time
    # A-not-A and ambiguous custody
    ("card_custody", "你问我卖没卖给别人"),
    ("card_custody", "没卖就是借给朋友用了"),  # no comma: negation may swallow 借给
    # custody phrases outside card_custody are not custody answers
    ("counterparty", "是我老婆"),
]


@pytest.mark.parametrize(("topic", "text"), SILENT)
def test_rule_stays_silent(topic: str, text: str) -> None:
    assert rules.match(text, topic) is None


@pytest.mark.parametrize(
    ("text", "negated", "plain"),
    [
        ("没有卖给别人", Intent.CUSTODY_SELF, Intent.CUSTODY_SOLD),
        ("从来没有借给朋友", Intent.CUSTODY_SELF, Intent.CUSTODY_LENT),
        ("验证码没发给过别人", Intent.CUSTODY_SELF, Intent.CREDENTIALS_SHARED),
    ],
)
def test_negation_flips_custody(text: str, negated: Intent, plain: Intent) -> None:
    plain_text = text.replace("从来没有", "").replace("没有", "").replace("没", "")
    assert rules.match(text, "card_custody") == rules.match(text, "card_custody")
    assert rules.match(text, "card_custody").intent is negated  # type: ignore[union-attr]
    assert rules.match(plain_text, "card_custody").intent is plain  # type: ignore[union-attr]


def test_topic_dependence() -> None:
    # 不认识这个人: wrong number at the identity gate, "don't know them" elsewhere.
    assert rules.match("我不认识这个人", "identity").intent is Intent.WRONG_NUMBER  # type: ignore[union-attr]
    counter = rules.match("我不认识这个人", "counterparty")
    assert counter is None or counter.intent is not Intent.WRONG_NUMBER
    # custody rules only under card_custody
    assert rules.match("借给朋友用了", "card_custody").intent is Intent.CUSTODY_LENT  # type: ignore[union-attr]
    assert rules.match("借给朋友用了", "fund_source") is None
    # third party only at identity/default
    assert rules.match("我是他老婆", "identity").intent is Intent.THIRD_PARTY  # type: ignore[union-attr]
    assert rules.match("我是他老婆", "counterparty") is None


def test_pinyin_does_not_invent_wrong_number() -> None:
    # 信号 (xin hao) must not read as 新号 "new number" on pinyin.
    assert rules.match("信号不好", "identity").intent is Intent.ASK_REPEAT  # type: ignore[union-attr]


def test_not_convenient_to_say_vs_now() -> None:
    assert rules.match("我不方便说", "fund_source").intent is Intent.REFUSE  # type: ignore[union-attr]
    assert rules.match("现在不方便", "fund_source").intent is Intent.BUSY_CALLBACK  # type: ignore[union-attr]
    assert rules.match("我现在不忙", "identity") is None


def test_core_text_strips_fillers_and_particles() -> None:
    assert rules.core_text("嗯，是的呀") == "是的"
    assert rules.core_text("那个，就是说，不知道啊。") == "不知道"
    assert rules.core_text("嗯") == "嗯"


def test_empty_text() -> None:
    assert rules.match("", "identity") is None
    assert rules.match("   ", "identity") is None


def test_rules_only_classifier_fallback() -> None:
    clf = IntentClassifier(None)
    assert clf.classify("我在一家物流公司做仓管", "occupation").intent is Intent.INFORM
    assert clf.classify("嗯那个", "identity").intent is Intent.UNCLEAR
    assert clf.classify("", "default").intent is Intent.UNCLEAR
    assert clf.classify("您拨打的电话已关机", "identity").intent is Intent.VOICEMAIL
    # cached result is identical
    assert clf.classify("您拨打的电话已关机", "identity") == clf.classify(
        "您拨打的电话已关机", "identity"
    )
    batch = clf.classify_batch([("不知道", "fund_source"), ("卖掉了", "card_custody")])
    assert [s.intent for s in batch] == [Intent.UNCLEAR, Intent.CUSTODY_SOLD]


def test_excluded_intents_by_topic() -> None:
    assert Intent.CUSTODY_SOLD in excluded_intents("fund_source")
    assert Intent.CUSTODY_SOLD not in excluded_intents("card_custody")
    assert Intent.THIRD_PARTY not in excluded_intents("identity", rule_only=False)
    assert Intent.THIRD_PARTY in excluded_intents("occupation", rule_only=False)
    assert Intent.VOICEMAIL in excluded_intents("fund_source", rule_only=False)
    assert Intent.VOICEMAIL not in excluded_intents("default", rule_only=False)


@pytest.mark.parametrize("topic", ["identity", "card_custody", "fund_source", "default"])
def test_call_ending_intents_come_only_from_rules(topic: str) -> None:
    for intent in (
        Intent.VOICEMAIL,
        Intent.BUSY_CALLBACK,
        Intent.ASK_REPEAT,
        Intent.WRONG_NUMBER,
        Intent.THIRD_PARTY,
    ):
        assert intent in excluded_intents(topic)
    assert Intent.AFFIRM not in excluded_intents(topic)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("是我，什么事？", Intent.AFFIRM),
        ("对，我是李娜。", Intent.AFFIRM),
        ("是的，我就是，怎么了", Intent.AFFIRM),
        ("对，我是他老婆", Intent.THIRD_PARTY),
        ("不是，你打错了", Intent.WRONG_NUMBER),
    ],
)
def test_identity_answer_opening_with_a_plain_yes(text: str, intent: Intent) -> None:
    found = rules.match(text, "identity")
    assert found is not None and found.intent is intent


def test_leading_yes_is_only_an_identity_rule() -> None:
    found = rules.match("是我，什么事？", "card_purpose")
    assert found is None or found.intent is not Intent.AFFIRM
    assert rules.match("好的，你说", "identity") is None
