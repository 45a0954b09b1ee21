"""The media-stream side of each telephony gateway: its ``start`` message, pipecat's
frame serializer for it, and its *mark* message.

pipecat's serializers do the wire protocol (base64 G.711 in JSON, DTMF, ``clear`` on
barge-in); this module only picks one per provider, reads the call identifiers out of
the ``start`` message the serializer itself ignores, and taps outbound audio so the
session can time turns and know when the far end has finished playing a prompt.
Automatic hang-up through the provider's REST API stays off: the dialler adapter
(:mod:`bot.telephony`) owns call control, and tests must never reach a provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pipecat.frames.frames import Frame, InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer

Provider = Literal["loopback", "twilio", "telnyx", "plivo"]


#: WebSocket close codes (RFC 6455, 7.4.1) for a stream refused before it starts.
#: A binary frame: the media-stream protocols are JSON text.
CLOSE_UNSUPPORTED_DATA: Final = 1003
#: Text that is not a JSON object, or a field of the wrong type.
CLOSE_INVALID_PAYLOAD: Final = 1007
#: Well-formed but out of protocol: no ``start`` (in time, or first), an identifier
#: missing, a call nobody dialled.
CLOSE_POLICY_VIOLATION: Final = 1008
#: The longest close reason a WebSocket close frame carries (bytes of UTF-8).
MAX_CLOSE_REASON: Final = 123
#: Longest identifier accepted from a gateway (Twilio's SIDs have 34 characters).
MAX_ID_CHARS: Final = 256


class StreamStartError(ValueError):
    """The gateway's first messages were not a valid stream start; ``code`` is the
    WebSocket close code to refuse it with (None: the gateway has already gone)."""

    def __init__(self, reason: str, code: int | None = CLOSE_POLICY_VIOLATION) -> None:
        super().__init__(reason)
        self.code = code

    @property
    def close_reason(self) -> str:
        """The reason, cut to what a close frame carries."""
        raw = str(self).encode()[:MAX_CLOSE_REASON]
        return raw.decode(errors="ignore")


@dataclass(frozen=True)
class StreamStart:
    """Identifiers from the gateway's ``start`` message."""

    stream_id: str
    call_id: str
    #: Parameters we attached when dialling (``call_key`` matches the stream to the call).
    parameters: Mapping[str, str] = field(default_factory=dict)
    encoding: str = "PCMU"

    @property
    def call_key(self) -> str:
        return self.parameters.get("call_key", "")


def parse_start(provider: Provider, message: object) -> StreamStart:
    """Read a ``start`` message (Twilio's format also serves the loopback gateway).

    Anything else is refused with a :class:`StreamStartError` carrying the close code:
    1007 for a message or field of the wrong shape, 1008 for a well-formed message that
    is not a usable start (another event, an identifier missing).
    """
    if not isinstance(message, Mapping):
        raise StreamStartError("a message must be a JSON object", CLOSE_INVALID_PAYLOAD)
    event = message.get("event")
    if not isinstance(event, str):
        raise StreamStartError("'event' must be a string", CLOSE_INVALID_PAYLOAD)
    if event != "start":
        raise StreamStartError(f"expected a 'start' event, got {event[:40]!r}")
    start = message.get("start")
    if start is None:
        raise StreamStartError("'start' event without a 'start' object")
    if not isinstance(start, Mapping):
        raise StreamStartError("'start' must be an object", CLOSE_INVALID_PAYLOAD)
    params = _parameters(start)
    encoding = "PCMU"
    if provider == "telnyx":
        stream_id = _ident(message.get("stream_id") or start.get("stream_id"), "stream id")
        call_id = _ident(start.get("call_control_id"), "call id")
        media_format = start.get("media_format", {})
        if not isinstance(media_format, Mapping):
            raise StreamStartError("'media_format' must be an object", CLOSE_INVALID_PAYLOAD)
        encoding = media_format.get("encoding", "PCMU")
        if not isinstance(encoding, str):
            raise StreamStartError("'encoding' must be a string", CLOSE_INVALID_PAYLOAD)
    elif provider == "plivo":
        stream_id = _ident(start.get("streamId"), "stream id")
        call_id = _ident(start.get("callId"), "call id")
    else:
        stream_id = _ident(start.get("streamSid") or message.get("streamSid"), "stream id")
        call_id = _ident(start.get("callSid"), "call id")
    return StreamStart(stream_id, call_id, params, encoding)


def _ident(value: object, what: str) -> str:
    """A required identifier from the start message."""
    if value is None or value == "":
        raise StreamStartError(f"the 'start' event names no {what}")
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS:
        raise StreamStartError(
            f"the {what} must be a string of at most {MAX_ID_CHARS} characters",
            CLOSE_INVALID_PAYLOAD,
        )
    return value


def _parameters(start: Mapping[str, Any]) -> dict[str, str]:
    """The custom parameters we attached when dialling (absent: none)."""
    params = start.get("customParameters", start.get("custom_parameters"))
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(
        isinstance(v, str | int | float | bool) for v in params.values()
    ):
        raise StreamStartError(
            "'customParameters' must be an object of plain values", CLOSE_INVALID_PAYLOAD
        )
    return {str(k): str(v) for k, v in params.items()}


def mark_message(provider: Provider, start: StreamStart, name: str) -> dict[str, Any] | None:
    """The gateway's "tell me when this point of the audio has played" message."""
    if provider in ("twilio", "loopback"):
        return {"event": "mark", "streamSid": start.stream_id, "mark": {"name": name}}
    if provider == "telnyx":
        return {"event": "mark", "stream_id": start.stream_id, "mark": {"name": name}}
    if provider == "plivo":
        return {"event": "checkpoint", "streamId": start.stream_id, "name": name}
    return None


@dataclass
class WireTap:
    """Callbacks for what crosses the wire: bot audio out (with its duration), clears,
    callee audio in, and inbound messages that could not be decoded."""

    on_audio: Callable[[float], None]
    on_clear: Callable[[], None]
    on_inbound: Callable[[], None]
    on_bad_message: Callable[[str], None]


def _tapped(base: type[FrameSerializer]) -> type[FrameSerializer]:
    class Tapped(base):  # type: ignore[valid-type,misc]
        tap: WireTap | None = None

        async def serialize(self, frame: Frame) -> str | bytes | None:
            out: str | bytes | None = await super().serialize(frame)
            if out is not None and self.tap is not None:
                if isinstance(frame, OutputAudioRawFrame):
                    self.tap.on_audio(len(frame.audio) / (2 * frame.sample_rate))
                elif isinstance(frame, InterruptionFrame):
                    self.tap.on_clear()
            return out

        async def deserialize(self, data: str | bytes) -> Frame | None:
            try:
                json.loads(data)  # pipecat would log the whole undecodable message
                frame: Frame | None = await super().deserialize(data)
            except Exception as exc:  # corrupt JSON, base64 or audio: count it, go on
                if self.tap is not None:
                    self.tap.on_bad_message(f"{type(exc).__name__}: {exc}")
                return None
            if isinstance(frame, InputAudioRawFrame) and self.tap is not None:
                self.tap.on_inbound()
            return frame

    Tapped.__name__ = Tapped.__qualname__ = f"Tapped{base.__name__}"
    return Tapped


_TWILIO = _tapped(TwilioFrameSerializer)
_TELNYX = _tapped(TelnyxFrameSerializer)
_PLIVO = _tapped(PlivoFrameSerializer)


def serializer_for(provider: Provider, start: StreamStart, tap: WireTap) -> FrameSerializer:
    ser: Any
    if provider == "telnyx":
        ser = _TELNYX(
            stream_id=start.stream_id,
            outbound_encoding=start.encoding,
            inbound_encoding=start.encoding,
            call_control_id=start.call_id or None,
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    elif provider == "plivo":
        ser = _PLIVO(
            stream_id=start.stream_id,
            call_id=start.call_id or None,
            params=PlivoFrameSerializer.InputParams(auto_hang_up=False),
        )
    else:
        ser = _TWILIO(
            stream_sid=start.stream_id,
            call_sid=start.call_id or None,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
    ser.tap = tap
    return ser  # type: ignore[no-any-return]
