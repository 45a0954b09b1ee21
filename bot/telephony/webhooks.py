"""Twilio's callbacks into our app: call status, the AMD verdict, and (optionally) the
TwiML document for deployments that create calls with ``Url=`` instead of ``Twiml=``.

Every request must carry a valid ``X-Twilio-Signature`` (Twilio's documented scheme:
HMAC-SHA1, keyed with the auth token, over the full URL followed by the POST parameters
sorted by name, each name directly followed by its value; base64). The URL is rebuilt
from ``public_base_url`` because behind a TLS-terminating proxy the URL we receive is not
the one Twilio signed. Bodies are parsed with :mod:`urllib.parse` (FastAPI's form parsing
would need python-multipart for no gain).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, HTTPException, Request, Response

from bot.telephony.config import TwilioSettings
from bot.telephony.dialer import AnsweredBy, CallStatus, CallStatusBoard, DialStatusEvent
from bot.telephony.twilio_rest import AMD_PATH, CALL_KEY_PARAM, STATUS_PATH, TWIML_PATH, build_twiml

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` Twilio computes for a request to ``url`` with ``params``.

    Repeated names are sorted by value and duplicates counted once, as Twilio's own
    helper libraries do.
    """
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    data = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(grouped[name])
    )
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str
) -> bool:
    """Constant-time check; an empty token or signature never verifies (an HMAC keyed
    with an empty token is one anybody can compute)."""
    if not auth_token or not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def twilio_router(settings: TwilioSettings, board: CallStatusBoard) -> APIRouter:
    """Routes for Twilio's callbacks; mount with ``app.include_router(...)`` at the root
    of the app that ``public_base_url`` points to. The board must live on the app's loop.

    Raises ``ValueError`` when signature checking is off for a non-loopback public URL.
    """
    if not settings.validate_signatures and not is_loopback_url(settings.public_base_url):
        raise ValueError(
            "telephony.twilio.validate_signatures may only be off when public_base_url "
            "is a loopback address (local development)"
        )
    token = settings.auth_token.get_secret_value()
    router = APIRouter()

    async def verified_params(request: Request) -> list[tuple[str, str]]:
        body = await request.body()
        ctype = request.headers.get("content-type", "")
        params: list[tuple[str, str]] = []
        if request.method == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        if settings.validate_signatures:
            signature = request.headers.get(SIGNATURE_HEADER, "")
            if not any(
                verify_twilio_signature(token, url, params, signature)
                for url in _signed_url_candidates(settings.public_base_url, request)
            ):
                log.warning("twilio: rejected a callback on %s (bad signature)", request.url.path)
                raise HTTPException(status_code=403, detail="invalid Twilio signature")
        return params

    def call_key_of(request: Request) -> str:
        key = request.query_params.get(CALL_KEY_PARAM, "")
        if not key:
            raise HTTPException(status_code=400, detail=f"missing {CALL_KEY_PARAM}")
        return key

    @router.post(STATUS_PATH, status_code=204)
    async def twilio_status(request: Request) -> Response:
        params = await verified_params(request)
        key = call_key_of(request)
        form = dict(params)
        try:
            status = CallStatus.parse(form.get("CallStatus", ""))
        except ValueError:
            log.warning("twilio: unknown CallStatus %r (call_key=%s)", form.get("CallStatus"), key)
            return Response(status_code=204)
        event = DialStatusEvent(
            call_id=form.get("CallSid", ""),
            call_key=key,
            status=status,
            answered_by=AnsweredBy.parse(form.get("AnsweredBy")),
            duration_s=_float_or_none(form.get("CallDuration")),
            at=_timestamp(form.get("Timestamp")),
        )
        delivered = board.publish(event)
        log.info(
            "twilio: call %s %s (call_key=%s%s)",
            event.call_id,
            status,
            key,
            "" if delivered else ", nobody waiting",
        )
        return Response(status_code=204)

    @router.post(AMD_PATH, status_code=204)
    async def twilio_amd(request: Request) -> Response:
        params = await verified_params(request)
        key = call_key_of(request)
        form = dict(params)
        answered_by = AnsweredBy.parse(form.get("AnsweredBy")) or AnsweredBy.UNKNOWN
        board.publish(
            DialStatusEvent(
                call_id=form.get("CallSid", ""),
                call_key=key,
                status=CallStatus.IN_PROGRESS,  # a verdict means the call was answered
                answered_by=answered_by,
                duration_s=None,
                at=datetime.now(UTC),
            )
        )
        log.info(
            "twilio: call %s answered by %s (call_key=%s)", form.get("CallSid"), answered_by, key
        )
        return Response(status_code=204)

    @router.api_route(TWIML_PATH, methods=["GET", "POST"])
    async def twilio_twiml(request: Request) -> Response:
        await verified_params(request)
        key = call_key_of(request)
        return Response(build_twiml(settings.stream_url, key), media_type="application/xml")

    return router


def _signed_url_candidates(public_base_url: str, request: Request) -> list[str]:
    """The URL Twilio called, as configured publicly, then as received (direct setups)."""
    query = request.url.query
    tail = request.url.path + (f"?{query}" if query else "")
    candidates = [public_base_url.rstrip("/") + tail] if public_base_url else []
    received = str(request.url)
    if received not in candidates:
        candidates.append(received)
    return candidates


def _float_or_none(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _timestamp(raw: str | None) -> datetime:
    """Twilio's ``Timestamp`` is RFC 2822 (``Mon, 16 Aug 2010 03:45:01 +0000``)."""
    if raw:
        try:
            at = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            pass
        else:
            return at if at.tzinfo else at.replace(tzinfo=UTC)
    return datetime.now(UTC)
