"""Twilio adapter: places and ends calls over Twilio's REST API (2010-04-01).

The call is created with inline TwiML that connects the answered call to our media
WebSocket (``<Connect><Stream>``), carrying the attempt's ``call_key`` as a stream
parameter, because Twilio drops query strings from stream URLs. Progress comes back on
the status callback (initiated, ringing, answered, completed) and, with answering
machine detection, on the asynchronous AMD callback; :mod:`bot.telephony.webhooks`
serves both.

Retries: 429, 5xx and connection failures are retried with capped exponential backoff;
4xx never is. A create request whose connection broke *after* it was sent is not
retried either: Twilio may already be ringing the customer, and a second call to a
fraud suspect is worse than a failed attempt the campaign retries later.
"""

from __future__ import annotations

import asyncio
import logging
import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from bot.core.masking import mask_phone, mask_text
from bot.telephony.config import TwilioSettings
from bot.telephony.dialer import DialRequest

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
#: Callback routes served by :func:`bot.telephony.webhooks.twilio_router`.
STATUS_PATH = "/telephony/twilio/status"
AMD_PATH = "/telephony/twilio/amd"
TWIML_PATH = "/telephony/twilio/twiml"
#: The TwiML stream parameter naming the attempt (read from Twilio's ``start`` message).
CALL_KEY_PARAM = "call_key"
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
#: Twilio error code of "the call is not in progress" (hanging up an ended call).
_NOT_IN_PROGRESS = 21220

#: Any phone-like digit run (E.164 or national) that the mainland-only patterns of
#: :mod:`bot.core.masking` miss: 8+ digits, optional leading + and inner separators.
_ANY_PHONE = re.compile(r"(?<![0-9A-Za-z*])\+?\d(?:[ \-]?\d){7,}(?![0-9A-Za-z])")


def mask_numbers(text: str) -> str:
    """Mask every phone number in ``text`` (mainland rules first, then any long digit run)."""
    return _ANY_PHONE.sub(lambda m: mask_phone(m.group(0)), mask_text(text))


class DialError(Exception):
    """Twilio refused or could not be reached. ``code`` is Twilio's error code when it
    gave one (https://www.twilio.com/docs/api/errors); ``status`` the HTTP status
    (``None`` for a network failure). The message never holds a full phone number."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        more_info: str = "",
        retryable: bool = False,
    ) -> None:
        self.message = mask_numbers(message)
        self.status = status
        self.code = code
        self.more_info = more_info
        self.retryable = retryable
        head = f"Twilio {status}" if status is not None else "Twilio unreachable"
        if code is not None:
            head += f" (code {code})"
        tail = f" [{more_info}]" if more_info else ""
        super().__init__(f"{head}: {self.message}{tail}")


def build_twiml(stream_url: str, call_key: str) -> str:
    """``<Response><Connect><Stream url=..><Parameter name="call_key" value=../>``.

    Built with ElementTree so quotes, ampersands and angle brackets in either value
    are escaped; raises ``ValueError`` unless the stream URL is ``wss://`` (Twilio
    only streams to secure WebSockets; plain ``ws://`` is accepted for a loopback
    address only, as local tests use it).
    """
    from bot.telephony.webhooks import is_loopback_url

    scheme = urlsplit(stream_url).scheme
    if scheme != "wss" and not (scheme == "ws" and is_loopback_url(stream_url)):
        raise ValueError("Twilio media streams need a wss:// URL")
    response = ET.Element("Response")
    stream = ET.SubElement(ET.SubElement(response, "Connect"), "Stream", url=stream_url)
    ET.SubElement(stream, "Parameter", name=CALL_KEY_PARAM, value=call_key)
    return ET.tostring(response, encoding="unicode")


def callback_url(public_base_url: str, path: str, call_key: str) -> str:
    """Absolute callback URL for one attempt (the key rides in the query)."""
    if not public_base_url:
        raise ValueError("telephony.twilio.public_base_url is not set")
    return f"{public_base_url.rstrip('/')}{path}?{urlencode({CALL_KEY_PARAM: call_key})}"


class TwilioDialer:
    """:class:`bot.telephony.dialer.Dialer` for Twilio Programmable Voice.

    ``client`` lets the app share one connection pool; a client passed in is not closed
    by :meth:`aclose`.
    """

    def __init__(self, settings: TwilioSettings, client: httpx.AsyncClient | None = None) -> None:
        if not settings.account_sid or not settings.auth_token.get_secret_value():
            raise ValueError("telephony.twilio.account_sid and auth_token are required")
        self.settings = settings
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=settings.request_timeout_s)
        self._auth = httpx.BasicAuth(settings.account_sid, settings.auth_token.get_secret_value())
        self._calls_url = (
            f"{settings.base_url.rstrip('/')}/{API_VERSION}/Accounts/"
            f"{quote(settings.account_sid, safe='')}/Calls"
        )

    def create_form(self, req: DialRequest) -> dict[str, str | list[str]]:
        """The form body of the create request (exposed for inspection and tests)."""
        s = self.settings
        form: dict[str, str | list[str]] = {
            "To": req.to,
            "From": s.from_number,
            "Twiml": build_twiml(req.stream_url or s.stream_url, req.call_key),
            "StatusCallback": callback_url(s.public_base_url, STATUS_PATH, req.call_key),
            "StatusCallbackEvent": list(STATUS_EVENTS),
            "StatusCallbackMethod": "POST",
            "Timeout": str(min(max(req.timeout_s, 5), 600)),
        }
        if req.machine_detection and s.machine_detection:
            form |= {
                "MachineDetection": "Enable",
                "AsyncAmd": "true",
                "AsyncAmdStatusCallback": callback_url(s.public_base_url, AMD_PATH, req.call_key),
                "AsyncAmdStatusCallbackMethod": "POST",
            }
        return form

    async def dial(self, req: DialRequest) -> str:
        """Create the call; returns its CallSid. Raises :class:`DialError`."""
        form = self.create_form(req)
        log.info("twilio: dialling %s (call_key=%s)", mask_numbers(req.to), req.call_key)
        body = await self._post(f"{self._calls_url}.json", form, idempotent=False)
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid:
            raise DialError("call created without a sid in the answer", status=201)
        log.info("twilio: call %s queued (call_key=%s)", sid, req.call_key)
        return sid

    async def hangup(self, call_id: str) -> None:
        """End the call (``Status=completed`` also cancels a ringing one). A call that
        has already ended is not an error."""
        url = f"{self._calls_url}/{quote(call_id, safe='')}.json"
        try:
            await self._post(url, {"Status": "completed"}, idempotent=True)
        except DialError as exc:
            if exc.code != _NOT_IN_PROGRESS:
                raise
            log.info("twilio: call %s had already ended", call_id)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def _post(
        self, url: str, form: dict[str, str | list[str]], *, idempotent: bool
    ) -> dict[str, Any]:
        s = self.settings
        attempt = 0
        while True:
            try:
                resp = await self._client.post(
                    url, data=form, auth=self._auth, timeout=s.request_timeout_s
                )
            except httpx.TransportError as exc:
                unsent = isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                error = DialError(f"{type(exc).__name__}: {exc}", retryable=unsent or idempotent)
                delay = self._backoff(attempt)
            else:
                if resp.is_success:
                    return _json_object(resp)
                error = _error_from(resp)
                delay = _retry_after(resp) or self._backoff(attempt)
            if not error.retryable or attempt >= s.max_retries:
                log.warning("twilio: request failed: %s", error)
                raise error
            attempt += 1
            pause = min(delay, s.retry_cap_s)
            log.info("twilio: %s; retry %d/%d in %.2fs", error, attempt, s.max_retries, pause)
            await asyncio.sleep(pause)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.settings.retry_base_s * 2**attempt, self.settings.retry_cap_s))


def _json_object(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_from(resp: httpx.Response) -> DialError:
    """Twilio's error body is ``{"code", "message", "more_info", "status"}``."""
    body = _json_object(resp)
    code = body.get("code")
    message = body.get("message") or resp.reason_phrase or "error"
    return DialError(
        str(message),
        status=resp.status_code,
        code=code if isinstance(code, int) else None,
        more_info=str(body.get("more_info") or ""),
        retryable=resp.status_code == 429 or resp.status_code >= 500,
    )


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("Retry-After", "")
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return None
