"""The callers' voices: the catalogue, the committed fixtures, each persona's pick."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from audio_fixtures.generate import persona_answers, shift
from bot.core.yamlsource import SourceFileError
from bot.settings import REPO_ROOT
from bot.sim.personas import load_dir, load_persona
from bot.sim.voices import BY_NAME, DEFAULT_VOICE, VOICES, persona_dir, voice, voice_dirs
from tests.conftest import SHARED

FIXTURES = REPO_ROOT / "audio_fixtures" / "voices"
PERSONAS = SHARED / "personas"


def test_catalogue_has_eight_distinct_voices_of_both_sexes_and_registers() -> None:
    assert len(VOICES) >= 8 and len(BY_NAME) == len(VOICES)
    assert {v.sex for v in VOICES} == {"female", "male"}
    assert {v.register for v in VOICES} == {"low", "mid", "high"}
    assert len({(v.engine, v.speaker, v.semitones) for v in VOICES}) == len(VOICES)
    assert all(v.licence for v in VOICES)
    assert DEFAULT_VOICE in BY_NAME
    with pytest.raises(KeyError, match="unknown voice"):
        voice("nobody")


def test_committed_fixtures_cover_every_voice_persona_and_answer() -> None:
    answers = dict(persona_answers(PERSONAS))
    assert set(voice_dirs(FIXTURES)) == set(BY_NAME)
    total = 0
    for name, directory in voice_dirs(FIXTURES).items():
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["voice"]["name"] == name and manifest["licence"]
        for pid, topics in answers.items():
            for topic, text in topics.items():
                path = directory / pid / f"{topic}.wav"
                info = sf.info(path)
                clip = manifest["clips"][f"{pid}/{topic}"]
                assert info.samplerate == 8000 and info.channels == 1, path
                assert info.subtype == clip["codec"].upper(), path  # stored in its G.711 law
                assert clip["text"] == text and 0.2 < info.duration < 15
                total += path.stat().st_size
    assert total < 25 * 2**20  # the fixtures stay small enough to commit


@pytest.mark.parametrize(
    "fixtures, personas",
    [
        ("wrong-person", ["heldout/b*", "heldout/c*", "tuning/r*"]),
        ("identity", ["heldout/x*"]),
    ],
)
def test_identity_fixtures_hold_what_their_personas_say_now(
    fixtures: str, personas: list[str]
) -> None:
    """Each recording is of the text its persona file has today (a retired persona keeps
    its clips under its new id), in every voice of the directory."""
    root = REPO_ROOT / "audio_fixtures" / fixtures
    files = sorted(f for pattern in personas for f in (REPO_ROOT / "eval_personas").glob(pattern))
    cases = [load_persona(f) for f in files]
    wanted = {
        c.id for c in cases if fixtures == "identity" or c.expected.outcome.value == "wrong_person"
    }
    assert len(wanted) >= 11
    for directory in voice_dirs(root).values():
        clips = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))["clips"]
        assert {key.split("/")[0] for key in clips} == wanted, directory
        for case in cases:
            if case.id not in wanted:
                continue
            for topic, text in case.answers.items():
                if text:
                    assert clips[f"{case.id}/{topic.value}"]["text"] == text
                    assert (directory / case.id / f"{topic.value}.wav").is_file()


def test_every_line_effect_occurs_in_the_fixtures() -> None:
    clips = [
        c
        for d in voice_dirs(FIXTURES).values()
        for c in json.loads((d / "manifest.json").read_text(encoding="utf-8"))["clips"].values()
    ]
    assert {c["codec"] for c in clips} == {"alaw", "ulaw"}
    assert any(c["lost_frames"] for c in clips) and any(not c["lost_frames"] for c in clips)
    assert any(c["clip_start_ms"] for c in clips) and any(c["level_step"] for c in clips)
    assert len({round(c["gain_db"]) for c in clips}) > 5


def test_voice_dirs_lists_voice_directories_or_the_ones_named(tmp_path: Path) -> None:
    for name in ("b", "a"):
        (tmp_path / name / "p01").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert list(voice_dirs(tmp_path)) == ["a", "b"]
    assert voice_dirs(tmp_path, ["b"]) == {"b": tmp_path / "b"}
    with pytest.raises(FileNotFoundError, match="no voice directory"):
        voice_dirs(tmp_path, ["c"])


def test_a_persona_picks_its_voice_or_gets_the_default(tmp_path: Path) -> None:
    text = (PERSONAS / "p01_salary_owner.yaml").read_text(encoding="utf-8")
    (tmp_path / "p.yaml").write_text(text + "voice: ttskit-aida\n", encoding="utf-8")
    p = load_persona(tmp_path / "p.yaml")
    assert p.voice == "ttskit-aida" and p.to_case().voice == "ttskit-aida"
    assert persona_dir(FIXTURES, p.id, p.voice) == FIXTURES / "ttskit-aida" / p.id
    assert persona_dir(FIXTURES, p.id, None) == FIXTURES / DEFAULT_VOICE / p.id
    personas, _ = load_dir(PERSONAS)
    assert all(q.voice is None for q in personas)
    (tmp_path / "p.yaml").write_text(text + "voice: ../etc\n", encoding="utf-8")
    with pytest.raises(SourceFileError, match="voice"):
        load_persona(tmp_path / "p.yaml")


def test_pitch_variant_is_lower_and_longer() -> None:
    import numpy as np

    rate = 8000
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    y = shift(x, rate, -3.0)
    assert y.size == pytest.approx(rate * 2 ** (3 / 12), rel=0.01)
    spectrum = np.abs(np.fft.rfft(y))
    peak_hz = np.argmax(spectrum) * rate / y.size
    assert peak_hz == pytest.approx(1000 * 2 ** (-3 / 12), rel=0.01)
    assert shift(x, rate, 0.0) is x


def _tts_cer() -> Any:
    spec = importlib.util.spec_from_file_location("tts_cer", REPO_ROOT / "bench" / "tts_cer.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixture_cer_is_per_voice_and_per_effect_and_capped_per_clip(tmp_path: Path) -> None:
    import numpy as np

    bench = _tts_cer()
    texts = {"p1/identity": "是我本人", "p1/default": "好的", "p2/identity": "不是我"}
    clips = {}
    for i, (key, text) in enumerate(texts.items()):
        path = tmp_path / "v" / f"{key}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.full(8000, 0.1 * (i + 1), np.float32), 8000, subtype="ALAW")
        clips[key] = {
            "text": text,
            "codec": "alaw" if i else "ulaw",
            "lost_frames": [3] if i == 2 else [],
            "clip_start_ms": 0.0,
            "level_step": None,
        }
    manifest = {"voice": {"name": "v", "engine": "e", "speaker": "s", "sex": "male",
                          "register": "low", "semitones": 0.0}, "clips": clips}  # fmt: skip
    (tmp_path / "v" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    heard = iter(["是我本人", "", "不是我不是我不是我不是我"])  # right, silent, a loop
    report = bench.run_fixtures(tmp_path, None, lambda x: next(heard))
    v = report["voices"]["v"]
    assert v["clips"] == 3 and v["reference_chars"] == 9
    assert v["cer"] == pytest.approx((0 + 2 + 9) / 9, abs=1e-3)
    assert v["cer_capped"] == pytest.approx((0 + 2 + 3) / 9, abs=1e-3)
    assert report["by_effect"]["codec=ulaw"] == 0.0 and report["by_effect"]["loss=yes"] == 3.0
