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
from typing import Any, Literal

from pipecat.frames.frames import Frame, InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer

Provider = Literal["loopback", "twilio", "telnyx", "plivo"]


class StreamStartError(ValueError):
    """The gateway's first messages were not a valid stream start."""


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


def parse_start(provider: Provider, message: Mapping[str, Any]) -> StreamStart:
    """Read a ``start`` message (Twilio's format also serves the loopback gateway)."""
    if message.get("event") != "start":
        raise StreamStartError(f"expected a 'start' event, got {message.get('event')!r}")
    start = message.get("start")
    if not isinstance(start, Mapping):
        raise StreamStartError("'start' event without a 'start' object")
    params = start.get("customParameters") or start.get("custom_parameters") or {}
    if not isinstance(params, Mapping):
        params = {}
    if provider == "telnyx":
        stream_id = message.get("stream_id") or start.get("stream_id")
        call_id = start.get("call_control_id")
        encoding = (start.get("media_format") or {}).get("encoding", "PCMU")
    elif provider == "plivo":
        stream_id = start.get("streamId")
        call_id = start.get("callId")
        encoding = "PCMU"
    else:
        stream_id = start.get("streamSid") or message.get("streamSid")
        call_id = start.get("callSid")
        encoding = "PCMU"
    if not stream_id:
        raise StreamStartError("the 'start' event names no stream id")
    return StreamStart(
        str(stream_id), str(call_id or ""), {str(k): str(v) for k, v in params.items()}, encoding
    )


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
