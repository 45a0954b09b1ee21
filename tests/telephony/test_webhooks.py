"""The Twilio callback router over real HTTP: signatures, status and AMD mapping, TwiML."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from bot.telephony.config import TwilioSettings
from bot.telephony.dialer import AnsweredBy, CallStatus, CallStatusBoard
from bot.telephony.webhooks import (
    is_loopback_url,
    twilio_router,
    twilio_signature,
    verify_twilio_signature,
)
from tests.telephony.conftest import STREAM_URL, free_socket, make_settings, serve, url_of
from tests.telephony.fake_twilio import AUTH_TOKEN, sign

pytestmark = pytest.mark.anyio

SID = "CA" + "1" * 32
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def test_signature_matches_twilios_published_vectors() -> None:
    assert (
        twilio_signature("12345", VECTOR_URL, VECTOR_PARAMS.items())
        == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    repeated = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert twilio_signature("12345", VECTOR_URL, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    # and the fake's independent implementation agrees
    assert sign("12345", VECTOR_URL, list(VECTOR_PARAMS.items())) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_verify_rejects_any_change_and_empty_inputs() -> None:
    good = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    params = list(VECTOR_PARAMS.items())
    assert verify_twilio_signature("12345", VECTOR_URL, params, good)
    assert not verify_twilio_signature("12346", VECTOR_URL, params, good)
    assert not verify_twilio_signature("12345", VECTOR_URL + "&x=1", params, good)
    assert not verify_twilio_signature(
        "12345", VECTOR_URL, [*params[:-1], ("To", "+18005551213")], good
    )
    assert not verify_twilio_signature("12345", VECTOR_URL, params, "")
    assert not verify_twilio_signature("12345", VECTOR_URL, params, "签名")
    empty_key = twilio_signature("", VECTOR_URL, params)
    assert not verify_twilio_signature("", VECTOR_URL, params, empty_key)


def test_is_loopback_url() -> None:
    assert is_loopback_url("http://127.0.0.1:8000")
    assert is_loopback_url("http://localhost/x")
    assert is_loopback_url("http://[::1]:80")
    assert not is_loopback_url("https://bot.bank.example")
    assert not is_loopback_url("http://10.0.0.5")
    assert not is_loopback_url("")


@dataclass
class Hooks:
    url: str
    board: CallStatusBoard
    settings: TwilioSettings
    client: httpx.AsyncClient

    async def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        token: str | None = AUTH_TOKEN,
        signed_url: str = "",
    ) -> httpx.Response:
        url = self.url + path
        headers = {}
        if token is not None:
            headers["X-Twilio-Signature"] = sign(token, signed_url or url, list(params.items()))
        return await self.client.post(url, data=params, headers=headers)


@contextlib.asynccontextmanager
async def serve_hooks(**over: Any) -> AsyncIterator[Hooks]:
    """Our router (with ``over`` applied to its settings) on a fresh local port."""
    sock = free_socket()
    url = url_of(sock)
    settings = make_settings("http://127.0.0.1:1", over.pop("public_base_url", url), **over)
    board = CallStatusBoard()
    app = FastAPI()
    app.include_router(twilio_router(settings, board))
    async with serve(app, sock), httpx.AsyncClient(timeout=5) as client:
        yield Hooks(url, board, settings, client)


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    async with serve_hooks() as h:
        yield h


def status_params(status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": SID,
        "CallStatus": status,
        "From": "+8675500000000",
        "To": "+8613800000001",
        "Timestamp": "Mon, 23 Nov 2026 02:00:05 +0000",
        **extra,
    }


async def test_signed_status_callback_reaches_the_board(hooks: Hooks) -> None:
    final = hooks.board.expect("k/1 &2")
    path = "/telephony/twilio/status?call_key=k%2F1+%262"
    r = await hooks.post(path, status_params("in-progress"))
    assert r.status_code == 204
    latest = hooks.board.latest("k/1 &2")
    assert latest is not None
    assert (latest.call_id, latest.status, latest.answered_by) == (
        SID,
        CallStatus.IN_PROGRESS,
        None,
    )
    assert latest.at == datetime(2026, 11, 23, 2, 0, 5, tzinfo=UTC)
    r = await hooks.post(path, status_params("completed", CallDuration="42"))
    assert r.status_code == 204
    event = await final
    assert event.status is CallStatus.COMPLETED and event.duration_s == 42.0


@pytest.mark.parametrize(
    "case", ["missing", "wrong_token", "garbage", "tampered_query", "tampered_body"]
)
async def test_bad_signatures_are_refused_with_403(hooks: Hooks, case: str) -> None:
    hooks.board.expect("k1")
    path = "/telephony/twilio/status?call_key=k1"
    params = status_params("busy")
    if case == "missing":
        r = await hooks.post(path, params, token=None)
    elif case == "wrong_token":
        r = await hooks.post(path, params, token="not-the-token")
    elif case == "garbage":
        r = await hooks.client.post(
            hooks.url + path, data=params, headers={"X-Twilio-Signature": "AAAA"}
        )
    elif case == "tampered_query":  # signature of another attempt's URL
        r = await hooks.post(
            path, params, signed_url=hooks.url + "/telephony/twilio/status?call_key=k2"
        )
    else:  # signed for "busy", sent as "completed"
        sig = sign(AUTH_TOKEN, hooks.url + path, list(params.items()))
        forged = params | {"CallStatus": "completed"}
        r = await hooks.client.post(
            hooks.url + path, data=forged, headers={"X-Twilio-Signature": sig}
        )
    assert r.status_code == 403
    assert hooks.board.latest("k1") is None and len(hooks.board) == 1


async def test_amd_callback_publishes_the_verdict(hooks: Hooks) -> None:
    final = hooks.board.expect("k1")
    r = await hooks.post(
        "/telephony/twilio/amd?call_key=k1",
        {
            "AccountSid": "AC1",
            "CallSid": SID,
            "AnsweredBy": "machine_end_beep",
            "MachineDetectionDuration": "2100",
        },
    )
    assert r.status_code == 204
    answered = await hooks.board.wait_answered_or_final("k1", timeout=1)
    assert answered.status is CallStatus.IN_PROGRESS and answered.answered_by is AnsweredBy.MACHINE
    await hooks.post("/telephony/twilio/status?call_key=k1", status_params("completed"))
    assert (await final).answered_by is AnsweredBy.MACHINE
    r = await hooks.post("/telephony/twilio/amd?call_key=k1", {"CallSid": SID}, token="wrong")
    assert r.status_code == 403


async def test_missing_key_is_400_and_unknown_status_is_ignored(hooks: Hooks) -> None:
    hooks.board.expect("k1")
    r = await hooks.post("/telephony/twilio/status", status_params("ringing"))
    assert r.status_code == 400
    r = await hooks.post("/telephony/twilio/status?call_key=k1", status_params("teleported"))
    assert r.status_code == 204
    assert hooks.board.latest("k1") is None
    r = await hooks.post("/telephony/twilio/status?call_key=nobody", status_params("busy"))
    assert r.status_code == 204  # signed but not ours (stale): acknowledged, dropped


async def test_signature_is_checked_against_the_public_url_behind_a_proxy() -> None:
    public = "https://bot.bank.example/callbot"
    async with serve_hooks(public_base_url=public) as h:
        h.board.expect("k1")
        path = "/telephony/twilio/status?call_key=k1"
        r = await h.post(path, status_params("ringing"), signed_url=public + path)
        assert r.status_code == 204
        assert h.board.latest("k1") is not None
        r = await h.post(path, status_params("busy"), signed_url="https://evil.example" + path)
        assert r.status_code == 403


async def test_an_empty_auth_token_refuses_everything() -> None:
    async with serve_hooks(auth_token=SecretStr("")) as h:
        h.board.expect("k1")
        r = await h.post("/telephony/twilio/status?call_key=k1", status_params("busy"), token="")
        assert r.status_code == 403
        assert h.board.latest("k1") is None


async def test_signature_checks_can_be_disabled_only_on_loopback() -> None:
    async with serve_hooks(validate_signatures=False) as h:
        h.board.expect("k1")
        r = await h.post("/telephony/twilio/status?call_key=k1", status_params("busy"), token=None)
        assert r.status_code == 204
        assert (await h.board.final("k1", timeout=1)).status is CallStatus.BUSY
    settings = make_settings(
        "http://127.0.0.1:1", "https://bot.bank.example", validate_signatures=False
    )
    with pytest.raises(ValueError, match="loopback"):
        twilio_router(settings, CallStatusBoard())


async def test_twiml_endpoint_serves_the_stream_document(hooks: Hooks) -> None:
    url = hooks.url + "/telephony/twilio/twiml?call_key=a%26b"
    r = await hooks.client.get(url, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url, [])})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    stream = ET.fromstring(r.text).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == STREAM_URL
    [param] = stream.findall("Parameter")
    assert (param.get("name"), param.get("value")) == ("call_key", "a&b")
    r = await hooks.post("/telephony/twilio/twiml?call_key=a%26b", {"CallSid": SID})
    assert r.status_code == 200 and "a&amp;b" in r.text
    r = await hooks.client.get(url)
    assert r.status_code == 403
