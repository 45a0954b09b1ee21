"""The gateways a campaign dials through, by name: the one list the CLI's ``--gateway``
options, ``bot config check`` and the worker's wiring share (kept free of imports so that
an unknown name is refused before anything loads)."""

from __future__ import annotations

from enum import StrEnum


class GatewayName(StrEnum):
    #: Text-mode callees answering as personas (no audio).
    SIMULATED = "simulated"
    #: Real phone calls (Twilio protocol over a local WebSocket) to simulated callees.
    LOOPBACK = "loopback"
    #: Real calls through Twilio.
    TWILIO = "twilio"

    @property
    def has_voice(self) -> bool:
        """Whether calls carry audio (Whisper and the TTS on the line)."""
        return self is not GatewayName.SIMULATED
