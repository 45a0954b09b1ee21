"""TwilioDialer against the fake Twilio over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from bot.telephony.dialer import DialRequest
from bot.telephony.twilio_rest import DialError, TwilioDialer, build_twiml, mask_numbers
from tests.telephony.conftest import STREAM_URL, free_socket, make_settings, url_of
from tests.telephony.fake_twilio import ACCOUNT_SID, FROM_NUMBER, FakeTwilio

pytestmark = pytest.mark.anyio

HUMAN = "+8613800000001"
STAYS_UP = "+8613800000006"


@pytest.fixture
def dead_url() -> str:
    """A local URL nobody listens on (connection refused at once)."""
    sock = free_socket()
    url = url_of(sock)
    sock.close()
    return url


@pytest.fixture
async def dialer(fake_twilio: FakeTwilio, dead_url: str) -> AsyncIterator[TwilioDialer]:
    d = TwilioDialer(make_settings(fake_twilio.base_url, f"{dead_url}/hooks"))
    yield d
    await d.aclose()


def request(to: str = HUMAN, key: str = "attempt-1", **kw: object) -> DialRequest:
    return DialRequest(to=to, call_key=key, stream_url=STREAM_URL, **kw)  # type: ignore[arg-type]


def stream_of(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None
    return stream


async def test_dial_posts_twilio_form_and_returns_the_sid(
    dialer: TwilioDialer, fake_twilio: FakeTwilio, dead_url: str
) -> None:
    sid = await dialer.dial(request(timeout_s=25))
    assert re.fullmatch(r"CA[0-9a-f]{32}", sid) and sid in fake_twilio.calls
    [rec] = fake_twilio.api_requests()
    assert rec.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert rec.authorized and rec.status == 201
    assert rec.get("To") == HUMAN and rec.get("From") == FROM_NUMBER
    assert rec.get("Timeout") == "25"
    stream = stream_of(rec.get("Twiml") or "")
    assert stream.get("url") == STREAM_URL
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"call_key": "attempt-1"}
    status_cb = urlsplit(rec.get("StatusCallback") or "")
    assert (rec.get("StatusCallback") or "").startswith(
        f"{dead_url}/hooks/telephony/twilio/status?"
    )
    assert status_cb.path == "/hooks/telephony/twilio/status"
    assert parse_qs(status_cb.query) == {"call_key": ["attempt-1"]}
    assert rec.all("StatusCallbackEvent") == ["initiated", "ringing", "answered", "completed"]
    assert rec.get("StatusCallbackMethod") == "POST"
    assert rec.get("MachineDetection") == "Enable" and rec.get("AsyncAmd") == "true"
    amd_cb = urlsplit(rec.get("AsyncAmdStatusCallback") or "")
    assert amd_cb.path == "/hooks/telephony/twilio/amd"
    assert parse_qs(amd_cb.query) == {"call_key": ["attempt-1"]}


async def test_odd_characters_in_the_call_key_survive_twiml_and_callback_url(
    dialer: TwilioDialer, fake_twilio: FakeTwilio
) -> None:
    key = "k&1\"<2>'3 中文 ?x=y#z"
    await dialer.dial(request(key=key))
    [rec] = fake_twilio.api_requests()
    twiml = rec.get("Twiml") or ""
    assert "<2>" not in twiml  # escaped, not raw markup
    [param] = stream_of(twiml).findall("Parameter")
    assert param.get("value") == key
    assert parse_qs(urlsplit(rec.get("StatusCallback") or "").query) == {"call_key": [key]}


def test_build_twiml_needs_a_secure_websocket() -> None:
    with pytest.raises(ValueError, match="wss"):
        build_twiml("ws://bot.example.test/media", "k")
    with pytest.raises(ValueError, match="wss"):
        build_twiml("https://bot.example.test/media", "k")


async def test_machine_detection_off_in_request_or_settings(
    fake_twilio: FakeTwilio, dead_url: str
) -> None:
    on = TwilioDialer(make_settings(fake_twilio.base_url, dead_url))
    off = TwilioDialer(make_settings(fake_twilio.base_url, dead_url, machine_detection=False))
    try:
        await on.dial(request(key="a", machine_detection=False))
        await off.dial(request(key="b"))
        await on.dial(request(key="c"))
    finally:
        await on.aclose()
        await off.aclose()
    a, b, c = fake_twilio.api_requests()
    for rec in (a, b):
        assert rec.get("MachineDetection") is None and rec.get("AsyncAmdStatusCallback") is None
    assert c.get("MachineDetection") == "Enable"


async def test_wrong_credentials_raise_401_without_retry(
    fake_twilio: FakeTwilio, dead_url: str
) -> None:
    settings = make_settings(fake_twilio.base_url, dead_url)
    wrong = TwilioDialer(settings.model_copy(update={"auth_token": SecretStr("nope")}))
    try:
        with pytest.raises(DialError) as err:
            await wrong.dial(request())
    finally:
        await wrong.aclose()
    assert err.value.status == 401 and err.value.code == 20003
    assert not err.value.retryable
    [rec] = fake_twilio.api_requests()
    assert not rec.authorized
    assert not fake_twilio.calls


async def test_invalid_number_error_is_mapped_and_masked(
    dialer: TwilioDialer, fake_twilio: FakeTwilio
) -> None:
    with pytest.raises(DialError) as err:
        await dialer.dial(request(to="13800000001"))
    e = err.value
    assert (e.status, e.code) == (400, 21211)
    assert e.more_info == "https://www.twilio.com/docs/errors/21211"
    assert "code 21211" in str(e) and "Invalid 'To' Phone Number" in str(e)
    assert "13800000001" not in str(e) and "138****0001" in str(e)
    assert len(fake_twilio.api_requests()) == 1  # 4xx: no retry


async def test_missing_from_is_a_400_and_not_retried(
    fake_twilio: FakeTwilio, dead_url: str
) -> None:
    d = TwilioDialer(make_settings(fake_twilio.base_url, dead_url, from_number=""))
    try:
        with pytest.raises(DialError) as err:
            await d.dial(request())
    finally:
        await d.aclose()
    assert (err.value.status, err.value.code) == (400, 21603)
    assert len(fake_twilio.api_requests()) == 1


async def test_503_twice_then_created(dialer: TwilioDialer, fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(503, 503)
    sid = await dialer.dial(request())
    assert [r.status for r in fake_twilio.api_requests()] == [503, 503, 201]
    assert list(fake_twilio.calls) == [sid]


async def test_429_honours_retry_after_up_to_the_cap(
    dialer: TwilioDialer, fake_twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    fake_twilio.fail_next(429, retry_after="30")  # capped at retry_cap_s=0.05
    with caplog.at_level(logging.INFO, logger="bot.telephony.twilio_rest"):
        sid = await dialer.dial(request())
    assert "retry 1/" in caplog.text and "in 0.05s" in caplog.text
    assert [r.status for r in fake_twilio.api_requests()] == [429, 201]
    assert sid in fake_twilio.calls


async def test_retries_are_bounded(dialer: TwilioDialer, fake_twilio: FakeTwilio) -> None:
    retries = dialer.settings.max_retries
    fake_twilio.fail_next(*[500] * (retries + 5))
    with pytest.raises(DialError) as err:
        await dialer.dial(request())
    assert err.value.status == 500 and err.value.retryable
    assert len(fake_twilio.api_requests()) == retries + 1
    assert not fake_twilio.calls


async def test_connection_refused_is_retried_then_raised(
    dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    d = TwilioDialer(make_settings(dead_url, dead_url, max_retries=2))
    caplog.set_level(logging.INFO, logger="bot.telephony.twilio_rest")
    try:
        with pytest.raises(DialError) as err:
            await d.dial(request())
    finally:
        await d.aclose()
    assert err.value.status is None and "ConnectError" in str(err.value)
    assert sum("retry" in r.getMessage() for r in caplog.records) == 2


async def test_create_that_times_out_after_sending_is_not_retried(
    fake_twilio: FakeTwilio, dead_url: str
) -> None:
    """The call may be ringing already: retrying would ring the customer twice."""
    d = TwilioDialer(make_settings(fake_twilio.base_url, dead_url, request_timeout_s=0.2))
    fake_twilio.stall_next(0.6)
    try:
        with pytest.raises(DialError) as err:
            await d.dial(request())
    finally:
        await d.aclose()
    assert "ReadTimeout" in str(err.value)
    assert len(fake_twilio.api_requests()) == 1 and len(fake_twilio.calls) == 1


async def test_hangup_ends_the_call_and_is_idempotent(
    dialer: TwilioDialer, fake_twilio: FakeTwilio
) -> None:
    sid = await dialer.dial(request(to=STAYS_UP))
    await dialer.hangup(sid)
    [rec] = fake_twilio.api_requests(f"/Calls/{sid}.json")
    assert rec.get("Status") == "completed" and rec.status == 200
    assert fake_twilio.calls[sid].status in ("completed", "canceled")
    await dialer.hangup(sid)  # already over: Twilio says 21220, which is fine
    assert [r.status for r in fake_twilio.api_requests(f"/Calls/{sid}.json")] == [200, 400]


async def test_hangup_timeout_is_retried_because_it_is_idempotent(
    fake_twilio: FakeTwilio, dead_url: str
) -> None:
    d = TwilioDialer(make_settings(fake_twilio.base_url, dead_url, request_timeout_s=0.2))
    try:
        sid = await d.dial(request(to=STAYS_UP))
        fake_twilio.stall_next(0.6)
        await d.hangup(sid)
    finally:
        await d.aclose()
    assert len(fake_twilio.api_requests(f"/Calls/{sid}.json")) == 2


async def test_hangup_of_an_unknown_call_raises(dialer: TwilioDialer) -> None:
    with pytest.raises(DialError) as err:
        await dialer.hangup("CA" + "f" * 32)
    assert (err.value.status, err.value.code) == (404, 20404)


def test_dialer_needs_credentials() -> None:
    with pytest.raises(ValueError, match="account_sid"):
        TwilioDialer(make_settings("http://127.0.0.1:1", "https://x.test", account_sid=""))


def test_mask_numbers_covers_foreign_and_mainland_numbers() -> None:
    text = "To +14155550100 or +8613800000001 or 020-12345678, code 21211, CA0123456789abcdef"
    masked = mask_numbers(text)
    for raw in ("4155550100", "13800000001", "020-12345678"):
        assert raw not in masked
    assert "code 21211" in masked and "CA0123456789abcdef" in masked
