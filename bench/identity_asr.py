"""Identity on a phone line: does Whisper hear the holder's name, and only where it is said?

Every persona answer with a recording is transcribed by Whisper base (int8, zh,
temperature 0) over two phone renderings: the shared personas' audio through a clean
8 kHz mu-law line, and ``audio_fixtures/phone-snr15`` (8 kHz, 15 dB noise). Each
configuration decodes every answer; the identity answers get the decode hint the voice
path gives them (``bot.voice.asr.DecodeHint``: the holder's name as hotwords, the tighter
token cap, optionally several hypotheses), the other answers are decoded as on any turn.

Reported per configuration and rendering: CER of the identity answers and of all
answers (total edits / total reference characters), the holder's name heard in the top
hypothesis / in any hypothesis (answers whose text says it), the name *inserted* (heard
in an answer that does not say it: the hotword must never do that), and decode seconds.

    python bench/identity_asr.py [--report reports/identity_asr.json] [--personas DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.settings import REPO_ROOT, Settings
from bot.sim.personas import load_persona
from bot.speech import cer, comparable
from bot.voice.asr import AsrOptions, DecodeHint, Transcriber
from bot.voice.audio import degrade_for_phone, read_audio, resample

RENDERINGS = {
    "line": None,  # the shared personas' audio, through a clean mu-law line
    "phone-snr15": REPO_ROOT / "audio_fixtures" / "phone-snr15",
}


@dataclass(frozen=True)
class Config:
    name: str
    beam_size: int = 1
    hotword: bool = False
    hypotheses: int = 1


CONFIGS = (
    Config("baseline"),
    Config("hotword", hotword=True),
    Config("hotword+nbest3", hotword=True, hypotheses=3),
    Config("beam5+hotword+nbest3", beam_size=5, hotword=True, hypotheses=3),
)


@dataclass
class Clip:
    persona: str
    topic: str
    name: str
    reference: str
    samples: np.ndarray


@dataclass
class Tally:
    edits: float = 0.0
    chars: int = 0
    id_edits: float = 0.0
    id_chars: int = 0
    said: int = 0
    heard_top: int = 0
    heard_any: int = 0
    inserted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "cer_all": round(self.edits / max(1, self.chars), 4),
            "cer_identity": round(self.id_edits / max(1, self.id_chars), 4),
            "name_heard_top": f"{self.heard_top}/{self.said}",
            "name_heard_any": f"{self.heard_any}/{self.said}",
            "name_inserted": self.inserted,
            "decode_s": round(self.seconds, 2),
        }


def load_clips(personas: Path, rendering: Path | None) -> list[Clip]:
    clips: list[Clip] = []
    for path in sorted(personas.glob("*.yaml")):
        persona = load_persona(path)
        base = (rendering or personas / "audio") / persona.id
        for topic, text in persona.answers.items():
            wav = base / f"{topic}.wav"
            if not text or not wav.is_file():
                continue
            samples, rate = read_audio(wav)
            if rendering is None:
                samples, rate = degrade_for_phone(samples, rate, snr_db=None), 8000
            clips.append(
                Clip(persona.id, topic, persona.account.name, text, resample(samples, rate, 16000))
            )
    return clips


def run(config: Config, clips: list[Clip], model_dir: Path) -> Tally:
    transcriber = Transcriber(model_dir, AsrOptions(beam_size=config.beam_size))
    transcriber.warm_up()
    tally = Tally()
    for clip in clips:
        identity = clip.topic == "identity"
        hint = DecodeHint(clip.name, config.hypotheses) if identity and config.hotword else None
        started = time.perf_counter()
        result = transcriber.transcribe(clip.samples, 16000, hint)
        tally.seconds += time.perf_counter() - started
        ref = comparable(clip.reference)
        edits = cer(clip.reference, result.text) * len(ref)
        tally.edits += edits
        tally.chars += len(ref)
        says_name = clip.name in clip.reference
        if identity:
            tally.id_edits += edits
            tally.id_chars += len(ref)
            if says_name:
                tally.said += 1
                tally.heard_top += clip.name in result.text
                tally.heard_any += any(clip.name in t for t in (result.text, *result.alternatives))
        if not says_name and clip.name in result.text:
            tally.inserted.append(f"{clip.persona}/{clip.topic}: {result.text}")
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--personas", type=Path, default=REPO_ROOT.parent / "shared" / "personas")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "reports" / "identity_asr.json")
    args = parser.parse_args()
    model_dir = Settings().whisper_path
    report: dict[str, Any] = {}
    for rendering, folder in RENDERINGS.items():
        clips = load_clips(args.personas, folder)
        report[rendering] = {"answers": len(clips)}
        for config in CONFIGS:
            summary = run(config, clips, model_dir).summary()
            report[rendering][config.name] = summary
            print(rendering, config.name, json.dumps(summary, ensure_ascii=False), flush=True)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
