"""High-precision intent rules.

Rules cover what a small model gets wrong or what must never be missed: operator and
answering-machine announcements, repeat requests, explicit refusals, busy/callback
phrases, wrong-number and third-party answers at the identity question, explicit
card-custody statements (sold/rented, credentials handed over, lent, family, self) and
one- or two-word answers (是的, 没有, 不知道). Anything else returns ``None`` and is
left to the model.

Principles:

* **Topic-aware.** Custody classes fire only under ``card_custody``; third-party and
  wrong-number answers only at ``identity`` (and ``default``, which covers non-question
  nodes such as the opening); 不认识 means "wrong number" at ``identity`` but "I don't
  know the counterparty" elsewhere.
* **Negation-aware.** Custody verbs are checked with :mod:`nlu.negation`: 没有卖 is not
  ``custody_sold``; a negated lend/sell/share with nothing asserted is ``custody_self``
  ("我从来没有借给别人"). Without punctuation the negation scope of a negator runs to the
  end of the utterance, so a negated cue followed by another cue is left to the model.
* **ASR-tolerant.** Multi-character key phrases match on toneless pinyin as well as on
  characters (:class:`nlu.phonetic.KeyphraseMatcher`), so 验正码 still reads 验证码.

Text is expected already normalised (Simplified, half-width), as the analyzer does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from bot.core.vocab import Intent
from nlu.negation import Span, hearsay_spans, in_spans, negation_spans
from nlu.phonetic import KeyphraseMatcher
from nlu.types import IntentScore

SOURCE = "rule"

# Confidence reported per kind of evidence (rules are meant to be right when they fire).
CONF_ANNOUNCEMENT = 0.98
CONF_STRONG = 0.93
CONF_LEXICON = 0.95
#: A bare backchannel ("嗯", "嗯嗯") is most often a yes but may be "huh?" or "go on":
#: an affirm, below the rule set's bar for a hard admission (0.65), so it can route a
#: question but never admit anything on its own.
CONF_BACKCHANNEL = 0.6
#: Bare backchannels (see CONF_BACKCHANNEL).
BACKCHANNELS = frozenset({"嗯", "嗯嗯", "嗯嗯嗯", "嗯呐", "恩", "恩恩"})
CONF_CUSTODY = 0.9

IDENTITY_TOPICS = frozenset({"identity", "default"})
CUSTODY_TOPIC = "card_custody"

_PUNCT = "，,。.！!？?；;、:：…~～ \t\"'“”‘’()（）"
_BOUNDARY = re.compile(r"[，,。.！!？?；;、:：…]|但是|不过|可是|而是|只是|其实")
_LEADING_FILLER = re.compile(
    r"^(?:嗯+|啊+|呃+|额+|哦+|喔+|噢+|喂+|哎呀|哎哟|哎+|唉+|诶+|那个|这个|就是说|就是|我说|那|呐)"
    r"(?:[，,。.！!？?…~\s]+|(?=.))"
)
_PARTICLES = "啊呀吧哦嘛呢哈嘞咯啦喽噢喔哟"

# --------------------------------------------------------------------------------------
# Phrase tables (matched on characters and toneless pinyin when two characters or more)
# --------------------------------------------------------------------------------------
_ANNOUNCEMENT = (
    "您拨打的",
    "您所拨打的",
    "你拨打的",
    "您拨的",
    "您呼叫的",
    "您拨叫的",
    "拨打的用户",
    "拨打的电话",
    "拨打的号码",
    "无法接通",
    "暂时无法接听",
    "无人接听",
    "已关机",
    "已停机",
    "是空号",
    "不在服务区",
    "暂停服务",
    "提示音后",
    "提示音之后",
    "嘀声后",
    "嘀的一声",
    "请留言",
    "留言完毕",
    "语音信箱",
    "稍后再拨",
    "请稍后再拨",
    "来电提醒",
    "呼叫转移",
    "查证后再拨",
    "呼叫限制",
    "来电秘书",
    "请留下您的",
    "按提示音",
)
_ANNOUNCEMENT_RE = re.compile(
    r"机主的(?:智能|语音|AI|ai)?(?:助理|秘书|助手)|机主(?:现在|暂时)|"
    r"subscriber|number you (?:have )?dial|leave a message|power(?:ed)? off|"
    r"not in service|redial|not available|after the tone|cannot be connected",
    re.IGNORECASE,
)

_REFUSE_STRONG = (
    "不想回答",
    "不想说",
    "不想讲",
    "不想告诉",
    "不想透露",
    "不想多说",
    "不想跟你说",
    "不告诉你",
    "不会告诉",
    "不会说的",
    "隐私",
    "无可奉告",
    "拒绝回答",
    "不回答",
    "关你什么事",
    "关你屁事",
    "关你啥事",
    "跟你有什么关系",
    "和你有什么关系",
    "跟你有啥关系",
    "跟你没关系",
    "管得着",
    "管不着",
    "少管",
    "不用你管",
    "不用你们管",
    "你别管",
    "不关你",
    "凭什么",
    "没必要告诉",
    "没必要回答",
    "没必要跟你说",
    "没义务",
    "别再打",
    "不要再打",
    "烦不烦",
    "我要投诉",
    "不方便说",
    "不方便透露",
    "不方便回答",
    "不方便告诉",
    "不便透露",
    "别问了",
    "不要问了",
    "你不要问",
    "别烦我",
    "拒绝回答",
    "这个问题我拒绝",
)
# Refusal words that are too common to trust in a long answer (他不说是干嘛的).
_REFUSE_SHORT = ("不说", "不讲", "挂了", "不告诉", "拒绝")
_SHORT = 8  # characters of content (after fillers and punctuation) for the short tables

_REPEAT = (
    "再说一遍",
    "再说一次",
    "再说一下",
    "再讲一遍",
    "再讲一次",
    "再来一遍",
    "重复一下",
    "再重复",
    "没听清",
    "听不清",
    "听不见",
    "听不到",
    "没听见",
    "没听到",
    "没听明白",
    "你说什么",
    "你说啥",
    "说的啥",
    "说的什么",
    "说啥子",
    "说什么",
    "大声点",
    "大声一点",
    "大点声",
    "信号不好",
    "你问啥",
    "你讲什么",
)
_REPEAT_MAX = 16  # an ask-repeat phrase inside a long answer is not a repeat request
_REPEAT_WHOLE = frozenset({"啥", "什么", "啊", "哈", "喂", "你说", "哪张卡"})

_BUSY = (
    "在开车",
    "开着车",
    "正开车",
    "在开会",
    "开会呢",
    "要开会",
    "进会议室",
    "在忙",
    "正忙",
    "忙着呢",
    "很忙",
    "有点忙",
    "正在忙",
    "没空",
    "没时间",
    "不方便接",
    "不方便讲电话",
    "不方便说话",
    "不方便听",
    "走不开",
    "不能接电话",
)
_BUSY_RE = re.compile(
    r"(?:晚点|晚一点|迟点|等会儿?|等一下|一会儿?|过会儿?|过一会儿?|回头|改天|待会儿?|稍后|"
    r"忙完|下班后?)了?(?:你|我)?再?(?:打|说|联系|回|讲|聊)|"
    r"(?:明天|下午|晚上|中午|\d+点|[一二三四五六七八九十两]+点)(?:以后|之后)?(?:你|我)?再?"
    r"(?:打吧|打过来吧|再打|再说|再联系)|"
    r"现在不方便(?![说讲透回告])"
)

_WRONG_NUMBER = (
    "打错",
    "拨错",
    "没有这个人",
    "没这个人",
    "没有叫",
    "号码错",
    "号码弄错",
    "新号",
    "刚办的号",
    "新换的",
    "才买的",
    "不是他的号",
    "不是她的号",
    "不是他的电话",
    "不是她的电话",
)
_WRONG_NUMBER_RE = re.compile(r"不认识(?:这个人|他|她|你说的|什么)")

_KIN = (
    "老婆",
    "老公",
    "爱人",
    "媳妇",
    "儿子",
    "女儿",
    "闺女",
    "爸爸",
    "妈妈",
    "爸",
    "妈",
    "爹",
    "父亲",
    "母亲",
    "哥哥",
    "姐姐",
    "弟弟",
    "妹妹",
    "哥",
    "姐",
    "弟",
    "妹",
    "老伴",
    "对象",
    "家里人",
    "家人",
    "孩子",
    "奶奶",
    "爷爷",
    "外婆",
    "婆婆",
    "公公",
    "丈夫",
    "妻子",
    "家属",
)
_KIN_ALT = "|".join(sorted(_KIN, key=len, reverse=True))
_NOT_KIN = re.compile(r"哥们|姐妹|妹子|兄弟们")
_THIRD_PARTY_RE = re.compile(
    rf"(?:我是|我系|这是)(?:他|她|机主)的?(?:{_KIN_ALT}|同事|朋友|室友|领导|家属)|"
    r"(?:他|她)(?:现在)?(?:人)?(?:不在|没在|出去|出门|上班去|去上班|出差|在睡|睡了|在洗澡|"
    r"在上班|下地|手机落|手机放)|"
    rf"找我(?:{_KIN_ALT})|(?:{_KIN_ALT})的(?:手机|电话|号)|我帮(?:他|她)接"
)

# Custody: credentials (nouns on pinyin, verbs on characters).
_CREDENTIALS = (
    "验证码",
    "动态码",
    "密码",
    "U盾",
    "u盾",
    "网银",
    "手机银行",
    "登录信息",
    "账号密码",
    "口令",
)
_SHARE_RE = re.compile(
    r"发给|发过去|转发|告诉|给了|给他|给她|给对方|给别人|给老板|给那个|报给|念给|交给|借给|"
    r"说了|说过|跟.{0,4}说|让.{0,6}知道|拿着我的|给人|登了"
)
# The plain share verbs again, on pinyin (告速 for 告诉).
_SHARE_WORDS = ("告诉", "发给", "转发", "念给", "报给", "交给", "发过去")
_SOLD_RE = re.compile(
    r"卖(?:了|给|掉|出|过|卡)|把卡卖|出租|租给|租出|收卡|收走|租金|"
    r"给了?我\d*[零一二两三四五六七八九十百千万]+块|出钱买|花.{0,6}买了我"
)
_BARE_CUES = (("sold", re.compile(r"[卖租]")), ("lent", re.compile(r"借")))
_LENT_RE = re.compile(r"借给|借去|借走|借出|借了|借我的|找我借|问我借|跟我借|借他|借人|借用")
_FAMILY_VERB_RE = re.compile(
    r"在用|用了|用着|拿着|拿去|保管|管着|管钱|在管|帮我管|手上|手里|那里|那儿|那边|给了|交给|"
    r"留给|给我|用我的"
)
_SELF = (
    "自己保管",
    "自己用",
    "自己在用",
    "自己拿着",
    "自己管",
    "自己收着",
    "自己在管",
    "自己手里",
    "自己手上",
    "自己身上",
    "自己登",
    "在我身上",
    "在我手上",
    "在我手里",
    "在我这",
    "在我身边",
    "随身",
    "只有我",
    "我一个人",
    "本人保管",
    "不离身",
    "自己的手机",
    "钱包里",
    "在我自己",
    "我包里",
    "我口袋",
    "好好的",
)


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


_AFFIRM_WORDS = _words(
    """是 是的 是啊 是呀 是滴 是嘞 是是是 是是 对 对的 对啊 对呀 对对 对对对 对头 对是我
    嗯 嗯嗯 嗯呐 嗯对 嗯是 嗯是我 好 好的 好的好的 好嘞 好吧 行 行的 行吧 行行行 可以 可以的
    可以可以 没错 没错没错 是我 是我啊 就是我 我就是 我是 本人 是本人 我本人 就是本人 是我本人
    没问题 得嘞 要得 中 系 系我 ok OK 确认 当然 当然是 确实 确实是 明白 明白了 知道了 清楚了
    是这样 是这样的 对没错 是的没错 没毛病 有 有的 有过 有啊 有呀"""
)
_DENY_WORDS = _words(
    """不是 不是的 不是我 不是本人 我不是 没有 没有没有 没 没有的 没有的事 都没有 从来没有 从没有
    没有过 绝对没有 肯定没有 根本没有 不对 不对不对 不是不是 没得 莫得 冇 唔系 不用了 不用
    不需要 没有这回事 没这回事 没那回事 哪有 压根没有 没呢 并没有"""
)
_UNCLEAR_WORDS = _words(
    """不知道 不清楚 不太清楚 忘了 忘记了 记不清了 记不清 不记得了 不记得 不太记得 可能
    可能吧 好像是吧 好像吧 大概吧 大概 也许吧 也许 说不准 说不好 不好说 不确定 不太确定
    不晓得 晓不得 想不起来了 想不起来 谁知道呢 我也不知道 我不知道 我也不清楚 我不清楚 随便
    说不清 说不清楚 不太知道 记不得了 我忘了 忘掉了 应该是吧 差不多吧 不一定 我哪知道
    我哪晓得 呃 呃呃 额 额额"""
)


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int


def _matcher(phrases: Iterable[str]) -> KeyphraseMatcher:
    return KeyphraseMatcher({"hit": phrases})


class _Tables:
    """Matchers built once (pinyin of a few hundred phrases) on first use."""

    def __init__(self) -> None:
        self.announcement = _matcher(_ANNOUNCEMENT)
        self.refuse = _matcher(_REFUSE_STRONG)
        self.refuse_short = _matcher(_REFUSE_SHORT)
        self.repeat = _matcher(_REPEAT)
        self.busy = _matcher(_BUSY)
        # Character-only: on pinyin 信号 (xin hao) would read as 新号.
        self.wrong_number = KeyphraseMatcher({"hit": _WRONG_NUMBER}, pinyin=False)
        self.credentials = _matcher(_CREDENTIALS)
        self.share = _matcher(_SHARE_WORDS)
        self.self_custody = _matcher(_SELF)


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    return _Tables()


def core_text(text: str) -> str:
    """The utterance without leading fillers, punctuation, spaces and trailing particles,
    used for whole-utterance tables ("嗯，是的呀" -> "是的")."""
    out = text.strip()
    for _ in range(4):
        stripped = _LEADING_FILLER.sub("", out, count=1).strip()
        if stripped == out or not stripped:
            break
        out = stripped
    out = "".join(c for c in out if c not in _PUNCT)
    while len(out) > 1 and out[-1] in _PARTICLES:
        out = out[:-1]
    return out


def _score(intent: Intent, confidence: float) -> IntentScore:
    return IntentScore(intent, confidence, SOURCE)


def _hits(matcher: KeyphraseMatcher, text: str) -> list[_Hit]:
    return [_Hit(m.start, m.end) for m in matcher.find(text)]


def _regex_hits(pattern: re.Pattern[str], text: str) -> list[_Hit]:
    return [_Hit(m.start(), m.end()) for m in pattern.finditer(text)]


def _in_a_not_a(text: str, i: int) -> bool:
    """Whether ``text[i]`` is one half of an A-not-A question (卖没卖, 借不借)."""
    c = text[i]
    before = i >= 2 and text[i - 2] == c and text[i - 1] in "没不"
    return before or text[i + 1 : i + 3] in (f"没{c}", f"不{c}")


def _asserted(hits: Iterable[_Hit], spans: list[Span], text: str) -> list[_Hit]:
    """Hits outside any negation scope or hearsay clause and not part of an A-not-A
    question."""
    reported = hearsay_spans(text)
    return [
        h
        for h in hits
        if not in_spans(spans, h.start, h.end)
        and not in_spans(reported, h.start, h.end)
        and not _in_a_not_a(text, h.start)
    ]


def _clauses(text: str) -> list[tuple[int, int]]:
    bounds, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.start() > start:
            bounds.append((start, m.start()))
        start = m.end()
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


def _same_clause(a: Iterable[_Hit], b: Iterable[_Hit], text: str) -> bool:
    b = list(b)
    for lo, hi in _clauses(text):
        if any(lo <= h.start < hi for h in a) and any(lo <= h.start < hi for h in b):
            return True
    return False


# --------------------------------------------------------------------------------------
# Individual rules
# --------------------------------------------------------------------------------------
def _announcement(text: str) -> IntentScore | None:
    if _ANNOUNCEMENT_RE.search(text) or _tables().announcement.find(text):
        return _score(Intent.VOICEMAIL, CONF_ANNOUNCEMENT)
    return None


def _custody(text: str) -> IntentScore | None:
    """Card-custody classes, highest-risk first: sold > credentials > lent > family > self."""
    spans = negation_spans(text)
    sold_all = _regex_hits(_SOLD_RE, text)
    lent_all = _regex_hits(_LENT_RE, text)
    cred_nouns = _hits(_tables().credentials, text)
    share_all = _regex_hits(_SHARE_RE, text) + _hits(_tables().share, text) if cred_nouns else []
    sold = _asserted(sold_all, spans, text)
    lent = _asserted(lent_all, spans, text)
    share = _asserted(share_all, spans, text)
    has_kin = bool(re.search(_KIN_ALT, _NOT_KIN.sub("", text)))

    if sold:
        return _score(Intent.CUSTODY_SOLD, CONF_CUSTODY)
    if share and _same_clause(cred_nouns, share, text) and not has_kin:
        return _score(Intent.CREDENTIALS_SHARED, CONF_CUSTODY)
    if lent:
        return None if has_kin else _score(Intent.CUSTODY_LENT, CONF_CUSTODY)
    # Kinds of custody cue that occur under negation (没卖, 从来没有借给别人); bare
    # characters count here, since 没卖就是借给朋友 has no 卖了/卖给.
    negated_kinds = {
        kind
        for kind, pattern in _BARE_CUES
        for m in pattern.finditer(text)
        if in_spans(spans, m.start(), m.end())
    } | ({"share"} if len(share) < len(share_all) else set())
    if has_kin:
        verbs = _asserted(_regex_hits(_FAMILY_VERB_RE, text), spans, text)
        kin = [_Hit(m.start(), m.end()) for m in re.finditer(_KIN_ALT, text)]
        if verbs and _same_clause(kin, verbs, text) and not negated_kinds:
            return _score(Intent.CUSTODY_FAMILY, CONF_CUSTODY)
    self_hits = _asserted(_hits(_tables().self_custody, text), spans, text)
    if self_hits:
        return _score(Intent.CUSTODY_SELF, CONF_CUSTODY)
    if has_kin or share or len(negated_kinds) != 1:
        # Several negated kinds ("没卖就是借给朋友了" without its comma) mean the scope
        # may have swallowed the positive half: leave it to the model.
        return None
    if len(text) <= 12 or _BOUNDARY.search(text):
        # Only a negated lend/sell cue ("从来没有借给别人"); long bare text is skipped
        # for the same reason.
        return _score(Intent.CUSTODY_SELF, CONF_CUSTODY - 0.05)
    return None


def _refusal(text: str, core: str) -> IntentScore | None:
    if "不是不想" in text:
        return None
    if _tables().refuse.find(text.replace("不方便说话", "")):
        return _score(Intent.REFUSE, CONF_STRONG)
    if len(core) <= _SHORT and _tables().refuse_short.find(core):
        return _score(Intent.REFUSE, CONF_STRONG - 0.05)
    return None


def _busy(text: str) -> IntentScore | None:
    spans = negation_spans(text)
    hits = _hits(_tables().busy, text) + _regex_hits(_BUSY_RE, text)
    if any(not in_spans(spans, h.start, h.end) for h in hits):
        return _score(Intent.BUSY_CALLBACK, CONF_STRONG)
    return None


def _repeat(core: str) -> IntentScore | None:
    if core in _REPEAT_WHOLE:
        return _score(Intent.ASK_REPEAT, CONF_STRONG - 0.05)
    if core and set(core) <= {"喂"}:
        return _score(Intent.ASK_REPEAT, CONF_STRONG)
    if len(core) <= _REPEAT_MAX and _tables().repeat.find(core):
        return _score(Intent.ASK_REPEAT, CONF_STRONG)
    return None


def _identity(text: str) -> IntentScore | None:
    if _tables().wrong_number.find(text) or _WRONG_NUMBER_RE.search(text):
        return _score(Intent.WRONG_NUMBER, CONF_STRONG)
    if _THIRD_PARTY_RE.search(text):
        return _score(Intent.THIRD_PARTY, CONF_STRONG - 0.03)
    return _leading_affirm(text)


_CLAUSE_END = re.compile(r"[，。！？,.!?；;、\s]")


def _leading_affirm(text: str) -> IntentScore | None:
    """ "是我，什么事？" / "对，我是李娜": an answer to "are you X?" that opens with a plain
    yes is a yes, whatever follows (wrong-number and third-party cues are checked first)."""
    first = _CLAUSE_END.split(text.strip(), maxsplit=1)[0]
    if not first or first == text.strip():
        return None
    core = core_text(first)
    if core in _AFFIRM_WORDS and core not in {"好", "好的", "行", "可以", "嗯"}:
        return _score(Intent.AFFIRM, CONF_LEXICON - 0.05)
    return None


_LEXICONS: Mapping[Intent, frozenset[str]] = {
    Intent.AFFIRM: _AFFIRM_WORDS,
    Intent.DENY: _DENY_WORDS,
    Intent.UNCLEAR: _UNCLEAR_WORDS,
}


def _lexicon(core: str, topic: str) -> IntentScore | None:
    if topic == "identity" and core in {"我是", "是我", "本人"}:
        return _score(Intent.AFFIRM, CONF_LEXICON)
    if topic == "counterparty" and core in {"不认识", "我不认识", "不认识他", "不认识她"}:
        return _score(Intent.DENY, CONF_LEXICON - 0.1)
    if core in BACKCHANNELS:
        return _score(Intent.AFFIRM, CONF_BACKCHANNEL)
    for intent, words in _LEXICONS.items():
        if core in words or core.lower() in words:
            return _score(intent, CONF_LEXICON)
    return None


def match(text: str, topic: str) -> IntentScore | None:
    """The intent of ``text`` when a rule is sure of it, else ``None``.

    ``topic`` is the topic key of the question just asked (``default`` for anything that
    is not one of the investigation topics).
    """
    text = text.strip()
    if not text:
        return None
    core = core_text(text)
    found = _announcement(text)
    if found is None and topic == CUSTODY_TOPIC:
        found = _custody(text)
    if found is None and topic in IDENTITY_TOPICS:
        found = _identity(text)
    if found is None:
        found = _refusal(text, core)
    if found is None:
        found = _busy(text)
    if found is None:
        found = _repeat(core)
    if found is None:
        found = _lexicon(core, topic)
    return found
