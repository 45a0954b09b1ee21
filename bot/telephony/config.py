"""Telephony settings (nested into :class:`bot.settings.Settings` as ``settings.telephony``).

Environment variables follow the nesting: ``BOT_TELEPHONY__PROVIDER=twilio``,
``BOT_TELEPHONY__TWILIO__ACCOUNT_SID``, ``BOT_TELEPHONY__TWILIO__AUTH_TOKEN`` ...
Plain data only (no HTTP client, no FastAPI), so that loading settings stays cheap.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class TwilioSettings(BaseModel):
    """One Twilio account used for outbound calls."""

    #: ``AC...``; also the Basic-auth user of every REST request.
    account_sid: str = ""
    #: Basic-auth password and the HMAC key of ``X-Twilio-Signature``; never logged.
    auth_token: SecretStr = SecretStr("")
    #: The caller ID: a Twilio number (or verified caller ID) in E.164.
    from_number: str = ""
    #: REST API root; tests point it at a fake server on 127.0.0.1.
    base_url: str = "https://api.twilio.com"
    #: Our public HTTPS root as Twilio sees it (status and AMD callbacks go below it).
    #: Signatures are checked against this URL, not the one a reverse proxy hands us.
    public_base_url: str = ""
    #: The media WebSocket (``wss://.../media``) the TwiML ``<Stream>`` connects to.
    stream_url: str = ""
    #: Ask Twilio for answering-machine detection (asynchronous, so the bot can start
    #: speaking at once; the verdict arrives on the AMD callback).
    machine_detection: bool = True
    #: Check ``X-Twilio-Signature`` on callbacks. Turning it off is refused unless
    #: ``public_base_url`` is a loopback address (local development only).
    validate_signatures: bool = True
    #: Seconds Twilio lets the phone ring before giving up with ``no-answer``.
    ring_timeout_s: int = Field(30, ge=5, le=600)
    #: Per-request timeout of REST calls.
    request_timeout_s: float = Field(10.0, gt=0)
    #: Retries after the first attempt on 429, 5xx and connection errors (never on 4xx).
    max_retries: int = Field(3, ge=0, le=10)
    #: First retry delay; doubles per retry (a 429's ``Retry-After`` wins, up to the cap).
    retry_base_s: float = Field(0.5, ge=0)
    retry_cap_s: float = Field(8.0, ge=0)


class TelephonySettings(BaseModel):
    """Which gateway places calls. ``loopback`` = no phone network (simulator, tests)."""

    provider: Literal["loopback", "twilio", "telnyx", "plivo"] = "loopback"
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
