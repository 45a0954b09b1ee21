"""Adapters against a real local HTTP receiver and a real file: signature, status
mapping, timeouts, and the file exporter's idempotency."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.delivery.adapters import (
    FileDeliverer,
    WebhookDeliverer,
    classify_status,
    encode_body,
    make_deliverer,
    sign,
    verify_signature,
)
from bot.delivery.config import DeliverySettings
from bot.store.models import OutboxRow
from tests.delivery.conftest import SECRET
from tests.delivery.receiver import Receiver


def item(n: int = 1) -> OutboxRow:
    key = f"disposition:{n}:{n}"
    payload = {"schema": 1, "idempotency_key": key, "account_id": f"a{n}", "note": "冻结"}
    return OutboxRow(id=n, disposition_id=n, idempotency_key=key, payload=payload)


def webhook(receiver: Receiver, **kw: object) -> WebhookDeliverer:
    return WebhookDeliverer(receiver.url, SECRET, timeout_s=0.2, **kw)  # type: ignore[arg-type]


# -- signature --------------------------------------------------------------------------


def test_signature_verifies_and_tampering_fails() -> None:
    body, ts = encode_body(item().payload), str(int(time.time()))
    header = sign(SECRET, ts, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(SECRET, ts, body, header)
    assert not verify_signature(SECRET, ts, body.replace(b"a1", b"a2"), header)
    assert not verify_signature("other-secret", ts, body, header)
    assert not verify_signature(SECRET, str(int(ts) + 1), body, header)  # timestamp is signed


def test_signature_refuses_stale_or_malformed_timestamps() -> None:
    body = b"{}"
    old = str(int(time.time()) - 301)
    assert not verify_signature(SECRET, old, body, sign(SECRET, old, body), tolerance_s=300)
    assert verify_signature(SECRET, old, body, sign(SECRET, old, body), tolerance_s=600)
    assert not verify_signature(SECRET, "yesterday", body, sign(SECRET, "yesterday", body))


def test_body_is_canonical_utf8_json() -> None:
    body = encode_body({"b": 1, "a": "冻结"})
    assert body == '{"a":"冻结","b":1}'.encode()


# -- webhook ----------------------------------------------------------------------------


def test_2xx_is_delivered_signed_with_the_idempotency_key(receiver: Receiver) -> None:
    deliverer = webhook(receiver)
    result = deliverer.deliver(item())
    deliverer.close()
    assert result.ok and result.detail == "HTTP 200"
    (got,) = receiver.requests
    assert got.signature_ok and got.key == "disposition:1:1"
    assert got.json() == item().payload and got.body == encode_body(item().payload)


def test_wrong_secret_is_refused_by_the_receiver_and_not_retried(receiver: Receiver) -> None:
    result = WebhookDeliverer(receiver.url, "guessed", timeout_s=0.2).deliver(item())
    assert not result.ok and not result.retryable and "401" in result.detail
    assert not receiver.requests[0].signature_ok


@pytest.mark.parametrize(
    ("status", "ok", "retryable"),
    [
        (201, True, False),
        (409, True, False),
        (400, False, False),
        (422, False, False),
        (500, False, True),
        (503, False, True),
        (429, False, True),
        (408, False, True),
    ],
)
def test_status_mapping_end_to_end(
    receiver: Receiver, status: int, ok: bool, retryable: bool
) -> None:
    result = webhook(receiver.then(status)).deliver(item())
    assert (result.ok, result.retryable) == (ok, retryable) == classify_status(status)
    assert result.detail.startswith(f"HTTP {status}")


def answering(status: int, **kw: Any) -> WebhookDeliverer:
    """A webhook whose bank answers every request with this response (no network)."""
    transport = httpx.MockTransport(lambda request: httpx.Response(status, **kw))
    return WebhookDeliverer("https://bank.example/d", SECRET, transport=transport)


@pytest.mark.parametrize(
    ("response", "ok", "retryable"),
    [
        ({}, True, False),  # the contract's 409: the bank already has this key
        ({"json": {"idempotency_key": "disposition:1:1"}}, True, False),
        ({"headers": {"Idempotency-Key": "disposition:1:1"}}, True, False),
        ({"text": "duplicate", "headers": {"Content-Type": "application/json"}}, True, False),
        # still processing the first request with this key: it may yet fail there
        ({"headers": {"Retry-After": "2"}}, False, True),
        # a conflict about something else is a rejection, not a delivery
        ({"json": {"idempotency_key": "disposition:9:9"}}, False, False),
        ({"headers": {"Idempotency-Key": "disposition:9:9"}}, False, False),
    ],
    ids=[
        "plain",
        "body-names-our-key",
        "header-names-our-key",
        "not-json",
        "retry-after",
        "body-names-another-key",
        "header-names-another-key",
    ],
)
def test_a_409_is_delivered_only_when_it_is_about_our_key(
    response: dict[str, Any], ok: bool, retryable: bool
) -> None:
    result = answering(409, **response).deliver(item())
    assert (result.ok, result.retryable) == (ok, retryable)
    assert result.detail.startswith("HTTP 409")


def test_redirects_are_not_followed() -> None:
    assert classify_status(302) == (False, False)


def test_timeout_is_retryable(receiver: Receiver) -> None:
    # The receiver hangs 0.5 s and then answers 200: a result that says "timeout" shows
    # the client gave up first (how fast is for the benchmarks, not for a test).
    result = webhook(receiver.then("hang")).deliver(item())
    assert not result.ok and result.retryable and "timeout" in result.detail


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = WebhookDeliverer(f"http://127.0.0.1:{port}/x", SECRET, 0.2).deliver(item())
    assert not result.ok and result.retryable and "transport error" in result.detail


def test_the_secret_is_never_shown() -> None:
    deliverer = WebhookDeliverer("http://127.0.0.1:9/x", SECRET)
    assert SECRET not in repr(deliverer)
    assert SECRET not in repr(DeliverySettings(webhook_secret=SecretStr(SECRET)))


def test_webhook_needs_url_and_secret(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret"):
        make_deliverer(DeliverySettings(webhook_url="http://127.0.0.1:9/x"), tmp_path)
    with pytest.raises(ValueError):
        WebhookDeliverer("", SECRET)
    configured = DeliverySettings(
        webhook_url="http://127.0.0.1:9/x", webhook_secret=SecretStr(SECRET)
    )
    assert isinstance(make_deliverer(configured, tmp_path), WebhookDeliverer)


# -- file -------------------------------------------------------------------------------


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_file_export_writes_each_key_once_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "out" / "dispositions.jsonl"
    first = FileDeliverer(path)
    assert first.deliver(item(1)).detail == "exported"
    assert first.deliver(item(1)).detail == "already exported"
    restarted = FileDeliverer(path)  # a new process: learns the keys from the file
    assert restarted.deliver(item(1)).ok
    assert restarted.deliver(item(2)).ok
    assert first.deliver(item(2)).detail == "already exported"  # appended by the other
    assert [x["idempotency_key"] for x in lines(path)] == ["disposition:1:1", "disposition:2:2"]


def test_file_export_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(encode_body(item(1).payload) + b"\n" + b'{"idempotency_key": "disp')
    deliverer = FileDeliverer(path)
    assert deliverer.deliver(item(1)).detail == "already exported"
    assert deliverer.deliver(item(2)).detail == "exported"
    raw = path.read_text().splitlines()
    assert len(raw) == 3  # the torn line stays, on a line of its own
    assert json.loads(raw[-1])["idempotency_key"] == "disposition:2:2"


def test_file_export_from_threads_and_two_exporters(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    exporters = [FileDeliverer(path), FileDeliverer(path)]

    def run(k: int) -> None:
        for n in range(20):
            assert exporters[k % 2].deliver(item(n)).ok

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [str(x["idempotency_key"]) for x in lines(path)]
    assert sorted(keys) == sorted(f"disposition:{n}:{n}" for n in range(20))


def test_file_mode_from_settings(tmp_path: Path) -> None:
    deliverer = make_deliverer(DeliverySettings(delivery_mode="file"), tmp_path)
    assert isinstance(deliverer, FileDeliverer)
    assert deliverer.path == tmp_path / "dispositions.jsonl"
