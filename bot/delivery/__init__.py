"""Delivering dispositions to the bank: outbox entries, payloads, adapters.

See ``docs/delivery.md`` for the payload schema, the signature scheme and the retry
policy. The pieces: :mod:`.payload` (what is sent, queued with the call's result),
:mod:`.adapters` (webhook / file), :mod:`.outbox` (claim, deliver, retry, dead-letter),
:mod:`.config` (``settings.delivery``).
"""
