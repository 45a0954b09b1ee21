"""Adapters that hand one outbox item to the bank: a signed webhook, or a JSON Lines file.

An adapter only reports what happened (:class:`DeliveryResult`); the outbox decides what
that means for the item (delivered, retry later, dead-letter). Adapters never raise for
a delivery failure, and must be idempotent on the item's key where they can (the outbox
delivers *at least once*: a deliverer that dies after sending, before recording, sends
again once its lease expires).

Webhook signature (documented for the bank in ``docs/delivery.md``)::

    X-Signature-Timestamp: <unix seconds>
    X-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>

Signing the timestamp with the body lets the receiver refuse replays older than its
tolerance; signing the raw bytes means the receiver must verify before parsing.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Protocol

import httpx

from bot.delivery.config import DeliverySettings
from bot.store.models import OutboxRow

SIGNATURE_HEADER: Final = "X-Signature"
TIMESTAMP_HEADER: Final = "X-Signature-Timestamp"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
USER_AGENT: Final = "callbot-investigator/1 (dispositions)"
#: How much of an error response body is kept (masked later) for ``last_error``.
_BODY_EXCERPT: Final = 200


@dataclass(frozen=True)
class DeliveryResult:
    """``ok``: the bank has the item. Otherwise ``retryable`` says whether trying again
    later can help (server error, timeout) or not (the bank rejected the item)."""

    ok: bool
    retryable: bool = False
    detail: str = ""


class Deliverer(Protocol):
    def deliver(self, item: OutboxRow) -> DeliveryResult: ...

    def close(self) -> None: ...


def encode_body(payload: dict[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): the same item always gives the same
    bytes, hence the same signature for the same timestamp."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


# -- signature --------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    tolerance_s: float = 300.0,
    *,
    now: float | None = None,
) -> bool:
    """Receiver side: True if ``header`` signs ``body`` with ``secret`` at ``timestamp``
    and the timestamp is within ``tolerance_s`` of ``now`` (replay protection).

    Pass the raw request body, before any JSON parsing.
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header.strip())


# -- webhook ----------------------------------------------------------------------------


def classify_status(status: int) -> tuple[bool, bool]:
    """(ok, retryable) for an HTTP status alone.

    2xx and 409 (the bank already has this key) are delivered. 408 and 429 are transient
    by definition and 5xx may be; every other status (other 4xx, unfollowed 3xx) is a
    rejection that repeating the same request will not fix. A 409 is then checked
    against what the answer says (:func:`conflict_result`).
    """
    if 200 <= status < 300 or status == 409:
        return True, False
    return False, status >= 500 or status in (408, 429)


def conflict_result(response: httpx.Response, key: str) -> DeliveryResult:
    """What a ``409 Conflict`` means for the item sent with idempotency key ``key``.

    The receiver contract (``docs/delivery.md``) gives 409 one meaning on this endpoint:
    "I already have this key", so it is **delivered**. Two 409s say they mean something
    else, and are read as they say:

    * with ``Retry-After``: a request with this key is still being processed (the IETF
      Idempotency-Key draft's 409). The first request may yet fail at the bank, so it is
      retried later, not taken as delivered;
    * naming another idempotency key (an ``Idempotency-Key`` response header, or an
      ``idempotency_key`` field in a JSON body): a conflict about something else, a
      rejection (dead).
    """
    if "retry-after" in response.headers:
        return DeliveryResult(
            False, True, "HTTP 409 with Retry-After: the bank is still processing this key"
        )
    named = _named_key(response)
    if named is not None and named != key:
        return DeliveryResult(
            False, False, f"HTTP 409 about another idempotency key: {response.text[:_BODY_EXCERPT]}"
        )
    return DeliveryResult(True, False, "HTTP 409: the bank already has this key")


def _named_key(response: httpx.Response) -> str | None:
    """The idempotency key a response says it is about, if it names one."""
    header: str | None = response.headers.get(IDEMPOTENCY_HEADER)
    if header is not None:
        return header.strip()
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    key = body.get("idempotency_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None


class WebhookDeliverer:
    """POSTs each item's payload as signed JSON to the bank's endpoint."""

    def __init__(
        self,
        url: str,
        secret: str,
        timeout_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url or not secret:
            raise ValueError("webhook delivery needs a URL and a signing secret")
        self.url = url
        self.timeout_s = timeout_s
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookDeliverer({self.url!r}, timeout_s={self.timeout_s})"

    def headers(self, item: OutboxRow, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        return {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: item.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }

    def deliver(self, item: OutboxRow) -> DeliveryResult:
        body = encode_body(item.payload)
        try:
            response = self._client.post(self.url, content=body, headers=self.headers(item, body))
        except httpx.TimeoutException as exc:
            return DeliveryResult(False, True, f"timeout after {self.timeout_s:g}s ({exc!r})")
        except httpx.TransportError as exc:
            return DeliveryResult(False, True, f"transport error: {exc!r}")
        if response.status_code == 409:
            return conflict_result(response, item.idempotency_key)
        ok, retryable = classify_status(response.status_code)
        detail = f"HTTP {response.status_code}"
        if not ok:
            detail += f": {response.text[:_BODY_EXCERPT]}"
        return DeliveryResult(ok, retryable, detail)

    def close(self) -> None:
        self._client.close()


# -- file -------------------------------------------------------------------------------


class FileDeliverer:
    """Appends one JSON line per item to ``path``, each key at most once.

    The keys already in the file are read on first use and after anything another
    process appended (an exclusive ``flock`` covers check-and-append), so a restart or a
    second exporter never writes a key twice. A line torn by a crash is terminated and
    skipped. POSIX only (``fcntl``).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keys: set[str] = set()
        self._offset = 0  # bytes of the file already indexed
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileDeliverer({str(self.path)!r})"

    def deliver(self, item: OutboxRow) -> DeliveryResult:
        line = encode_body({**item.payload, "idempotency_key": item.idempotency_key}) + b"\n"
        try:
            with self._lock, open(self.path, "a+b") as f:
                fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed
                self._catch_up(f)
                if item.idempotency_key in self._keys:
                    return DeliveryResult(True, False, "already exported")
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
                self._keys.add(item.idempotency_key)
                self._offset = f.tell()
        except OSError as exc:  # disk full, permissions: may clear up
            return DeliveryResult(False, True, f"file export failed: {exc!r}")
        return DeliveryResult(True, False, "exported")

    def _catch_up(self, f: IO[bytes]) -> None:
        """Index the lines appended since the last look (by anyone)."""
        f.seek(self._offset)
        data = f.read()
        if not data:
            return
        if not data.endswith(b"\n"):  # torn last line: end it so the next one stays whole
            f.write(b"\n")
        for raw in data.splitlines():
            key = _line_key(raw)
            if key:
                self._keys.add(key)
        self._offset = f.seek(0, os.SEEK_END)

    def close(self) -> None:
        """Nothing held between deliveries."""


def _line_key(raw: bytes) -> str | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    key = record.get("idempotency_key") if isinstance(record, dict) else None
    return key if isinstance(key, str) else None


def make_deliverer(settings: DeliverySettings, data_dir: Path) -> Deliverer:
    """The configured adapter. A webhook without a URL or a secret is a configuration
    error: unsigned pushes of account decisions are not an option."""
    if settings.delivery_mode == "file":
        return FileDeliverer(settings.file_path(data_dir))
    secret = settings.webhook_secret.get_secret_value()
    if not settings.webhook_url or not secret:
        raise ValueError(
            "delivery_mode=webhook needs delivery.webhook_url and delivery.webhook_secret "
            "(or set delivery.delivery_mode=file)"
        )
    return WebhookDeliverer(settings.webhook_url, secret, settings.webhook_timeout_s)
