"""Gateway media-stream protocols: the start message, the mark, and the wire tap on
pipecat's serializers (real serializers, real Twilio/Telnyx/Plivo message shapes)."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest
from pipecat.frames.frames import InputAudioRawFrame, InterruptionFrame, OutputAudioRawFrame

from bot.voice.gateways import (
    StreamStartError,
    WireTap,
    parse_start,
    serializer_for,
)

pytestmark = pytest.mark.anyio

TWILIO_START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": "MZ123",
    "start": {
        "streamSid": "MZ123",
        "callSid": "CA456",
        "accountSid": "AC789",
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"call_key": "abc"},
    },
}


def test_twilio_start_gives_ids_and_our_call_key() -> None:
    start = parse_start("twilio", TWILIO_START)
    assert (start.stream_id, start.call_id, start.call_key) == ("MZ123", "CA456", "abc")


def test_telnyx_and_plivo_starts() -> None:
    telnyx = parse_start(
        "telnyx",
        {
            "event": "start",
            "stream_id": "s1",
            "start": {"call_control_id": "v3:c", "media_format": {"encoding": "PCMA"}},
        },
    )
    assert (telnyx.stream_id, telnyx.call_id, telnyx.encoding) == ("s1", "v3:c", "PCMA")
    plivo = parse_start("plivo", {"event": "start", "start": {"streamId": "p1", "callId": "c2"}})
    assert (plivo.stream_id, plivo.call_id, plivo.call_key) == ("p1", "c2", "")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"event": "media"}, "expected a 'start'"),
        ({"event": "start"}, "without a 'start' object"),
        ({"event": "start", "start": {"callSid": "CA1"}}, "no stream id"),
    ],
)
def test_a_bad_start_is_refused_with_the_reason(message: dict[str, Any], reason: str) -> None:
    with pytest.raises(StreamStartError, match=reason):
        parse_start("twilio", message)


@pytest.mark.parametrize(
    ("provider", "message", "code"),
    [
        ("twilio", ["start"], 1007),
        ("twilio", {"event": "start", "start": {"streamSid": "MZ1", "callSid": 7}}, 1007),
        ("twilio", {"event": "start", "start": {"streamSid": "MZ1"}}, 1008),
        ("twilio", {"event": "start", "start": {"streamSid": "M" * 300, "callSid": "C"}}, 1007),
        ("plivo", {"event": "start", "start": {"streamId": "p1"}}, 1008),
        (
            "telnyx",
            {
                "event": "start",
                "stream_id": "s1",
                "start": {"call_control_id": "c", "media_format": "PCMA"},
            },
            1007,
        ),
    ],
)
def test_a_bad_start_carries_its_close_code(provider: str, message: Any, code: int) -> None:
    with pytest.raises(StreamStartError) as refused:
        parse_start(provider, message)  # type: ignore[arg-type]
    assert refused.value.code == code
    assert len(refused.value.close_reason.encode()) <= 123


def test_a_close_reason_is_cut_to_what_a_close_frame_carries() -> None:
    reason = StreamStartError("说" * 100).close_reason  # 300 bytes of UTF-8
    assert len(reason.encode()) <= 123 and reason == "说" * 41


class Tap:
    def __init__(self) -> None:
        self.audio: list[float] = []
        self.clears = 0
        self.inbound = 0
        self.bad: list[str] = []

    def wire(self) -> WireTap:
        return WireTap(
            on_audio=self.audio.append,
            on_clear=lambda: setattr(self, "clears", self.clears + 1),
            on_inbound=lambda: setattr(self, "inbound", self.inbound + 1),
            on_bad_message=self.bad.append,
        )


async def tapped(provider: str = "twilio") -> tuple[Any, Tap]:
    tap = Tap()
    ser = serializer_for(provider, parse_start("twilio", TWILIO_START), tap.wire())  # type: ignore[arg-type]
    await ser.setup(SimpleNamespace(audio_in_sample_rate=16000))  # type: ignore[arg-type]
    return ser, tap


async def test_outbound_audio_and_clear_are_tapped_as_they_go_on_the_wire() -> None:
    ser, tap = await tapped()
    out = await ser.serialize(OutputAudioRawFrame(b"\x00\x00" * 160, 8000, 1))
    message = json.loads(out)
    assert message["event"] == "media" and message["streamSid"] == "MZ123"
    assert len(base64.b64decode(message["media"]["payload"])) == 160  # 20 ms of mu-law
    assert tap.audio == [pytest.approx(0.02)]
    clear = json.loads(await ser.serialize(InterruptionFrame()))
    assert clear == {"event": "clear", "streamSid": "MZ123"} and tap.clears == 1


async def test_inbound_media_becomes_16k_audio() -> None:
    ser, tap = await tapped()
    payload = base64.b64encode(bytes(range(96, 256))).decode()
    frames = [
        await ser.deserialize(json.dumps({"event": "media", "media": {"payload": payload}}))
        for _ in range(50)
    ]
    audio = [f for f in frames if isinstance(f, InputAudioRawFrame)]
    assert audio and all(f.sample_rate == 16000 for f in audio)
    # 1 s of 8 kHz in, 16 kHz out (the stream resampler holds back its ~0.1 s of latency)
    assert 0.85 * 16000 <= sum(len(f.audio) for f in audio) // 2 <= 16000
    assert tap.inbound == len(audio) and not tap.bad


@pytest.mark.parametrize(
    "data",
    ["{not json", json.dumps({"event": "media", "media": {"payload": "%%%not base64"}})],
)
async def test_undecodable_media_is_counted_not_raised(data: str) -> None:
    ser, tap = await tapped()
    assert await ser.deserialize(data) is None
    assert len(tap.bad) == 1 and tap.inbound == 0


async def test_provider_hang_up_through_rest_is_off() -> None:
    """Tests and the loopback line must never reach a provider's REST API."""
    for provider in ("twilio", "telnyx", "plivo"):
        ser, _ = await tapped(provider)
        assert ser._params.auto_hang_up is False
