"""Outbound call control: gateway adapters (Twilio first), their callbacks, and the board
that tells the orchestrator how a dial attempt went. The media stream itself is handled
by the voice pipeline; this package only places, watches and ends calls.

Import the adapter and router modules directly (``bot.telephony.twilio_rest``,
``bot.telephony.webhooks``); this package root re-exports only the light, provider-neutral
types so that importing it pulls in neither httpx nor FastAPI.
"""

from bot.telephony.config import TelephonySettings, TwilioSettings
from bot.telephony.dialer import (
    AnsweredBy,
    CallStatus,
    CallStatusBoard,
    Dialer,
    DialRequest,
    DialStatusEvent,
    outcome_for,
)

__all__ = [
    "AnsweredBy",
    "CallStatus",
    "CallStatusBoard",
    "DialRequest",
    "DialStatusEvent",
    "Dialer",
    "TelephonySettings",
    "TwilioSettings",
    "outcome_for",
]
