"""pipecat logs through loguru: quiet by default, always PII-masked.

pipecat logs frame-level detail at DEBUG and sometimes the text being spoken or heard;
the same masking as the standard logging handlers (``PiiMaskingFilter``) is applied to
every loguru record, and only warnings and errors are shown unless asked for.
"""

from __future__ import annotations

import sys
from typing import Any

from loguru import logger

from bot.core.masking import mask_text


def _mask(record: Any) -> None:
    record["message"] = mask_text(record["message"])


#: pipecat warnings that are about our deliberate tuning, not about a call.
_EXPECTED = ("differs from the recommended default",)


def _wanted(record: Any) -> bool:
    return not any(text in record["message"] for text in _EXPECTED)


def _masked_stderr(message: Any) -> None:
    """The sink: the whole formatted record, traceback included, masked once more
    (the patcher only sees the message; a traceback is formatted after it)."""
    sys.stderr.write(mask_text(str(message)))


def configure_pipecat_logging(verbose: bool = False) -> None:
    logger.remove()
    logger.configure(patcher=_mask)
    # diagnose=False: never print the values of local variables in a traceback
    logger.add(
        _masked_stderr, level="DEBUG" if verbose else "WARNING", filter=_wanted, diagnose=False
    )
