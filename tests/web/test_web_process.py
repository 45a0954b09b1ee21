"""``bot web`` as an operator runs it: a real uvicorn process that stops on SIGTERM even
while a compliance user's exhausting template is being checked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

PASSWORD = "Kestrel-orchard-57-lantern"
MACRO = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):  # the first start loads the app (up to a minute on a busy machine)
        if proc.poll() is not None:
            raise AssertionError(f"bot web exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("bot web did not start")


def test_sigterm_stops_bot_web_while_exhausting_templates_are_checked(tmp_path: Path) -> None:
    env = {**os.environ, "BOT_DATA_DIR": str(tmp_path), "BOT_DATABASE_URL": ""}
    bot = [sys.executable, "-m", "bot"]
    subprocess.run(
        [*bot, "users", "add", "compliance", "--role", "compliance"],
        input=f"{PASSWORD}\n".encode(),
        env=env,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([*bot, "web", "--port", str(port)], env=env)
    try:
        _wait_up(base, proc)
        with httpx.Client(base_url=base, timeout=60) as client:
            r = client.post(
                "/api/v1/session", json={"username": "compliance", "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
            headers = {"X-CSRF-Token": r.json()["csrf_token"]}
            answers: list[int] = []

            def attack() -> None:
                source = f'id: x\nnodes:\n  a:\n    say: "{MACRO}{{{{ f(22) }}}}"\n'
                try:
                    answers.append(
                        client.post(
                            "/api/v1/workspace/scripts/dormant_short/lint",
                            json={"source": source},
                            headers=headers,
                        ).status_code
                    )
                except httpx.HTTPError:
                    answers.append(-1)  # the server went away first: also not stuck

            threads = [threading.Thread(target=attack) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.5)  # let them reach the server
            proc.send_signal(signal.SIGTERM)
            # uvicorn shuts down gracefully, then re-raises the signal it caught
            assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
            for t in threads:
                t.join(timeout=60)
            assert len(answers) == 4 and 500 not in answers
    finally:
        if proc.poll() is None:
            proc.kill()
