"""Decode hints for the identity question, without a model: the token cap, the check
that a hotword did not put the name over something else, n-best per turn, pinyin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.voice.asr import DecodeHint, Transcriber, token_cap
from bot.voice.processor import _turn_alternatives
from nlu.phonetic import sounds_like


def test_a_hinted_decode_gets_the_tighter_cap() -> None:
    assert token_cap(2.0) == 16 + 24
    assert token_cap(2.0, DecodeHint("张伟")) == 4 + 6 + 20
    assert token_cap(2.0, DecodeHint("")) == token_cap(2.0)  # no hotwords: as any turn


class _Scripted(Transcriber):
    """Decodes to fixed texts: hinted ones, and the plain decode's."""

    def __init__(self, hinted: list[str], plain: str) -> None:
        super().__init__(Path("/nonexistent"))
        self.hinted, self.plain, self.plain_decodes = hinted, plain, 0

    def _decode_piece(self, samples: np.ndarray, hint: DecodeHint | None = None) -> list[str]:
        if hint is None:
            self.plain_decodes += 1
            return [self.plain]
        return list(self.hinted)

    def _has_speech(self, samples: np.ndarray) -> bool:
        return True


SPEECH = np.ones(16000, dtype=np.float32)


@pytest.mark.parametrize(
    ("hinted", "plain", "text", "alternatives"),
    [
        # the plain decode hears something like the name: the hinted reading stands
        (["我不认识陈静"], "我不认识沉定", "我不认识陈静", ()),
        # the hotword wrote the name over "嗯，是我": the plain decode comes first
        (["孙丽是我"], "嗯是我", "嗯是我", ("孙丽是我",)),
        (["孙丽孙丽孙丽"], "嗯", "嗯", ("孙丽孙丽孙丽",)),
    ],
)
def test_a_hotword_name_must_be_audible_without_the_hint(
    hinted: list[str], plain: str, text: str, alternatives: tuple[str, ...]
) -> None:
    name = "陈静" if "陈" in hinted[0] else "孙丽"
    t = _Scripted(hinted, plain)
    result = t.transcribe(SPEECH, 16000, DecodeHint(name, 3))
    assert (result.text, result.alternatives) == (text, alternatives)
    assert t.plain_decodes == 1


def test_no_second_decode_when_the_name_is_not_written() -> None:
    t = _Scripted(["不是", "不是啊"], "不是")
    result = t.transcribe(SPEECH, 16000, DecodeHint("陈静", 3))
    assert (result.text, result.alternatives, t.plain_decodes) == ("不是", ("不是啊",), 0)


def test_turn_alternatives_swap_one_segment_at_a_time() -> None:
    segments = [("是的", ()), ("我是章为", ("我是张伟", "我是张为"))]
    assert _turn_alternatives(segments) == ("是的我是张伟", "是的我是张为")
    assert _turn_alternatives([("嗯", ())]) == ()


@pytest.mark.parametrize(
    ("text", "name", "within", "slips", "expected"),
    [
        ("章为", "张伟", False, None, True),
        ("李明", "李娜", False, None, False),
        ("曹秀迎", "曹秀英", False, None, True),
        ("我是章为啊", "张伟", True, None, True),
        ("嗯", "张伟", True, None, False),
        ("我不认识沉定", "陈静", True, 1, True),
        ("我不认识沉定", "陈静", True, None, False),
        ("我是张伟", "张伟", False, None, False),  # not the whole text
    ],
)
def test_sounds_like(text: str, name: str, within: bool, slips: int | None, expected: bool) -> None:
    assert sounds_like(text, name, within=within, slips=slips) is expected
