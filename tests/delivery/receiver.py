"""A real HTTP receiver for delivery tests: the bank's side of the webhook.

It verifies every request's signature with :func:`verify_signature`, answers like an
idempotent bank API (a key it already accepted gets 409), and can be told to misbehave
for the next requests: answer a given status, or accept and then hang past the client's
timeout (the bank has the item, the client never hears it). Binds to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from bot.delivery.adapters import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)

#: An HTTP status to answer, or "hang": accept the item, then answer too late.
Behaviour = int | Literal["hang"]


@dataclass(frozen=True)
class Received:
    key: str
    body: bytes
    signature_ok: bool
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, secret: str, *, hang_s: float = 1.0, delay_s: float = 0.0) -> None:
        self.secret = secret
        self.hang_s = hang_s
        #: Added to every answer (widens race windows in concurrency tests).
        self.delay_s = delay_s
        #: Error answers carry this text (careless bank APIs echo personal data).
        self.error_text = ""
        self.requests: list[Received] = []
        self.accepted: Counter[str] = Counter()
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/dispositions"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def then(self, *behaviours: Behaviour) -> Receiver:
        """Misbehave like this for the next requests, in order; then accept normally."""
        with self._lock:
            self._script.extend(behaviours)
        return self

    @property
    def duplicates(self) -> Counter[str]:
        """Keys received more than once, with how many extra times."""
        seen = Counter(r.key for r in self.requests)
        return Counter({k: n - 1 for k, n in seen.items() if n > 1})

    def handle(self, key: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
        """Decide the answer to one request: (status, seconds to wait before answering)."""
        signature_ok = verify_signature(
            self.secret,
            headers.get(TIMESTAMP_HEADER, ""),
            body,
            headers.get(SIGNATURE_HEADER, ""),
        )
        with self._lock:
            behaviour = self._script.popleft() if self._script else 200
            status, wait = self._answer(behaviour, key, signature_ok)
            self.requests.append(Received(key, body, signature_ok, status))
        return status, wait + self.delay_s

    def _answer(self, behaviour: Behaviour, key: str, signature_ok: bool) -> tuple[int, float]:
        if not signature_ok:
            return 401, 0.0
        if isinstance(behaviour, int) and behaviour != 200:
            return behaviour, 0.0
        if self.accepted[key]:
            return 409, 0.0
        self.accepted[key] += 1
        return 200, self.hang_s if behaviour == "hang" else 0.0


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            key = self.headers.get(IDEMPOTENCY_HEADER, "")
            status, wait = receiver.handle(key, body, dict(self.headers.items()))
            time.sleep(wait)
            error = receiver.error_text if status >= 300 else ""
            answer = json.dumps({"status": status, "error": error}, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:  # the client gave up waiting (timeout tests)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
