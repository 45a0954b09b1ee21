"""Delivery settings (nested into :class:`bot.settings.Settings` as ``settings.delivery``).

Environment variables follow the nesting: ``BOT_DELIVERY__WEBHOOK_URL``,
``BOT_DELIVERY__WEBHOOK_SECRET``, ``BOT_DELIVERY__DELIVERY_MODE=file`` ...
Plain data only (no imports of the adapters), so that loading settings stays cheap;
:func:`bot.delivery.outbox.serve` turns it into a running deliverer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class DeliverySettings(BaseModel):
    """How dispositions reach the bank."""

    #: ``webhook`` posts each disposition to ``webhook_url``; ``file`` appends JSON Lines.
    delivery_mode: Literal["webhook", "file"] = "webhook"
    #: The bank's HTTPS endpoint.
    webhook_url: str = ""
    #: Shared HMAC key (agreed with the bank out of band); never logged or shown.
    webhook_secret: SecretStr = SecretStr("")
    #: Per-request timeout; a timeout is retried.
    webhook_timeout_s: float = Field(10.0, gt=0)
    #: The JSON Lines export; empty = ``<data_dir>/dispositions.jsonl``.
    delivery_file: Path | None = None
    #: Attempts before an item is dead-lettered (re-drive it with ``requeue_dead``).
    delivery_max_attempts: int = Field(8, ge=1)
    #: Items claimed per round, and how long one claim holds them.
    delivery_batch: int = Field(50, ge=1)
    delivery_lease_s: float = Field(300.0, gt=0)
    #: Idle wait between rounds when nothing was due.
    delivery_poll_s: float = Field(5.0, gt=0)
    #: Retry delay after the first failure, doubling per attempt up to the cap.
    retry_base_s: float = Field(30.0, gt=0)
    retry_cap_s: float = Field(3600.0, gt=0)

    def file_path(self, data_dir: Path) -> Path:
        return self.delivery_file or data_dir / "dispositions.jsonl"
