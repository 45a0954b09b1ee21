"""PromptCache: keys, disk layout, atomic writes, LRU and hit counters (fake voice)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from bot.voice.tts import audio
from bot.voice.tts.cache import PromptCache
from bot.voice.tts.text import speakable
from tests.voice.conftest import ToneSynth

PROMPT = "这笔交易的对方是李四，请问对方和您是什么关系？"


def test_key_is_sha256_of_voice_and_spoken_clause(cache: PromptCache) -> None:
    (first, second) = cache.clauses(PROMPT)
    assert first.spoken == speakable("这笔交易的对方是李四，")
    assert first.key == hashlib.sha256(f"tone-v1\n{first.spoken}".encode()).hexdigest()
    assert second.key != first.key


def test_other_voice_gets_other_keys(tmp_path: Path) -> None:
    a, b = ToneSynth(), ToneSynth()
    b.voice = "tone-v2"
    ka = [c.key for c in PromptCache(a, tmp_path).clauses(PROMPT)]
    kb = [c.key for c in PromptCache(b, tmp_path).clauses(PROMPT)]
    assert not set(ka) & set(kb)


def test_written_and_spoken_forms_of_a_number_share_a_key(cache: PromptCache) -> None:
    assert cache.clauses("尾号8866的卡。")[0].key == cache.clauses("尾号八八六六的卡。")[0].key


def test_audio_is_8k_pcm_with_pauses_and_length_follows_text(
    cache: PromptCache, tone: ToneSynth
) -> None:
    pcm = cache.audio(PROMPT)
    assert tone.calls == [
        speakable("这笔交易的对方是李四，"),
        speakable("请问对方和您是什么关系？"),
    ]
    x = audio.to_float(pcm)
    chars = sum(len(c) for c in tone.calls)
    # 0.1 s per character at 8 kHz, trimmed margins aside, plus one clause pause
    assert abs(len(x) / 8000 - (0.1 * chars + cache.clause_pause_s)) < 0.1
    peak = float(np.max(np.abs(x)))
    assert 0.65 < peak < 0.75  # levelled to about -3 dBFS
    # the clause pause is real silence
    gap_start = int(0.1 * len(tone.calls[0]) * 8000) + 40
    assert np.max(np.abs(x[gap_start : gap_start + 600])) < 1e-3


def test_iter_audio_yields_clause_by_clause(cache: PromptCache, tone: ToneSynth) -> None:
    it = cache.iter_audio(PROMPT)
    first = next(it)
    assert len(tone.calls) == 1  # the second clause is not synthesised yet
    rest = list(it)
    assert len(rest) == 1 and len(tone.calls) == 2
    assert first + rest[0] == cache.audio(PROMPT)


def test_second_prompt_reuses_fixed_clauses_and_counts_hits(
    cache: PromptCache, tone: ToneSynth
) -> None:
    cache.audio(PROMPT)
    assert (cache.hits, cache.misses) == (0, 2)
    cache.audio("这笔交易的对方是王五，请问对方和您是什么关系？")
    assert (cache.hits, cache.misses) == (1, 3)
    assert len(tone.calls) == 3
    assert cache.hit_rate == pytest.approx(0.25)


def test_disk_cache_survives_a_new_process_and_files_are_wavs(
    tmp_path: Path, tone: ToneSynth
) -> None:
    first = PromptCache(tone, tmp_path)
    pcm = first.audio(PROMPT)
    files = sorted(tmp_path.rglob("*.wav"))
    assert len(files) == 2
    assert all(f.name.removesuffix(".wav") in {c.key for c in first.clauses(PROMPT)} for f in files)
    assert all(audio.read_wav(f)[1] == 8000 for f in files)
    fresh_synth = ToneSynth()
    second = PromptCache(fresh_synth, tmp_path)
    assert second.audio(PROMPT) == pcm
    assert fresh_synth.calls == []
    assert (second.hits, second.disk_hits, second.misses) == (2, 2, 0)


def test_other_out_rate_does_not_reuse_8k_files(tmp_path: Path, tone: ToneSynth) -> None:
    PromptCache(tone, tmp_path, out_rate=8000).audio(PROMPT)
    wide = PromptCache(tone, tmp_path, out_rate=16000)
    pcm = wide.audio(PROMPT)
    assert wide.misses == 2
    assert (
        abs(len(pcm) / 2 / 16000 - len(PromptCache(tone, tmp_path).audio(PROMPT)) / 2 / 8000) < 0.01
    )


def test_lru_keeps_only_the_most_recent_clauses_in_memory(tmp_path: Path, tone: ToneSynth) -> None:
    cache = PromptCache(tone, tmp_path, memory_items=2)
    for text in ("第一句话在这里。", "第二句话在这里。", "第三句话在这里。"):
        cache.audio(text)
    assert len(cache._memory) == 2
    cache.audio("第一句话在这里。")  # evicted from memory: read back from disk
    assert cache.disk_hits == 1
    cache.audio("第一句话在这里。")  # now in memory again
    assert (cache.hits, cache.disk_hits) == (2, 1)


def test_write_is_atomic_no_partial_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "ab" / "x.wav"
    audio.write_wav_atomic(target, b"\x01\x00" * 10, 8000)

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        audio.write_wav_atomic(target, b"\x02\x00" * 99, 8000)
    assert audio.read_wav(target) == (b"\x01\x00" * 10, 8000)  # old file intact
    assert [p.name for p in target.parent.iterdir()] == ["x.wav"]  # no temp file left


def test_corrupt_cache_file_is_rendered_again(cache: PromptCache, tone: ToneSynth) -> None:
    clause = cache.clauses(PROMPT)[0]
    path = cache.path(clause.key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a wav")
    pcm = cache.clause_audio(clause)
    assert len(pcm) > 1000 and cache.misses == 1
    assert audio.read_wav(path)[0] == pcm


def test_concurrent_threads_get_identical_audio(cache: PromptCache) -> None:
    results: list[bytes] = []

    def speak() -> None:
        results.append(cache.audio(PROMPT))

    threads = [threading.Thread(target=speak) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and len(set(results)) == 1
    assert cache.hits + cache.misses == 12


def test_prerender_counts_new_and_cached_clauses_once(cache: PromptCache, tone: ToneSynth) -> None:
    texts = [PROMPT, "这笔交易的对方是王五，请问对方和您是什么关系？", PROMPT]
    assert cache.prerender(texts) == (3, 0)
    assert len(tone.calls) == 3
    assert cache.prerender(texts) == (0, 3)
    assert len(tone.calls) == 3


def test_silent_or_unsayable_text_gives_no_audio(cache: PromptCache, tone: ToneSynth) -> None:
    assert cache.audio("……！") == b""
    assert tone.calls == []
