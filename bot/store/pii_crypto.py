"""Encryption of the full personal numbers a bank may need for an investigation.

Callee text is stored masked (:mod:`bot.store.pii`); the unmasked original of each
masked value is kept only when a key is configured, sealed with AES-256-GCM:

* the key is 32 random bytes, base64, from settings (``BOT_PII__KEY``); no key means
  the originals are not kept at all;
* every value gets its own random 96-bit nonce;
* the associated data names the row and column the value belongs to
  (``turn/42/text``), so a ciphertext copied onto another row does not decrypt;
* each ciphertext is stored with its key's id (a fingerprint of the key), so keys can
  be rotated: the new key goes into ``BOT_PII__KEY``, the old one into
  ``BOT_PII__OLD_KEYS`` (a JSON list), and values sealed under either still open. A
  value whose key is gone stays masked.

New key: ``python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, Field, SecretStr, model_validator

KEY_BYTES = 32
NONCE_BYTES = 12
#: Length of a key id (hex characters of the key's fingerprint).
KEY_ID_LENGTH = 16


class PiiError(Exception):
    """A sealed value that cannot be opened: its key is not configured, or the
    ciphertext, nonce or the row it claims to belong to was altered."""


class PiiKeyError(Exception):
    """A configured key that is not base64 of 32 bytes (the message never holds it)."""


def decode_key(text: str) -> bytes:
    """The 32 key bytes of a base64 key; ``ValueError`` for anything else."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a PII key is base64 text") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"a PII key is {KEY_BYTES} bytes (base64 of os.urandom(32))")
    return key


def key_id(key: bytes) -> str:
    """The id stored with each ciphertext: a fingerprint that tells keys apart and
    says nothing about the key."""
    return hashlib.sha256(b"callbot-pii-key-id\0" + key).hexdigest()[:KEY_ID_LENGTH]


class PiiSettings(BaseModel):
    """``settings.pii``: the key that seals full numbers (``BOT_PII__KEY``) and retired
    keys that still open what they sealed (``BOT_PII__OLD_KEYS='["..."]'``)."""

    key: SecretStr = Field(SecretStr(""), description="base64 of 32 random bytes; empty: keep none")
    old_keys: list[SecretStr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> PiiSettings:
        for name, secret in [("key", self.key), *(("old_keys", k) for k in self.old_keys)]:
            if secret.get_secret_value():
                try:
                    decode_key(secret.get_secret_value())
                except ValueError as exc:
                    # Not a ValueError: pydantic would print the key in its error.
                    raise PiiKeyError(f"settings pii.{name}: {exc}") from None
        return self


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


class KeyRing:
    """The current key (seals) and every configured key (open by key id)."""

    def __init__(self, current: bytes, retired: Sequence[bytes] = ()) -> None:
        self.key_id = key_id(current)
        self._current = AESGCM(current)
        self._by_id = {key_id(k): AESGCM(k) for k in retired}
        self._by_id[self.key_id] = self._current

    @classmethod
    def from_settings(cls, cfg: PiiSettings) -> KeyRing | None:
        """The ring for ``cfg``; None when no key is set (the originals are not kept)."""
        current = cfg.key.get_secret_value()
        if not current:
            return None
        retired = [decode_key(k.get_secret_value()) for k in cfg.old_keys if k.get_secret_value()]
        return cls(decode_key(current), retired)

    def seal(self, plaintext: str, associated: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        data = self._current.encrypt(nonce, plaintext.encode("utf-8"), associated)
        return Sealed(self.key_id, nonce, data)

    def open(self, sealed: Sealed, associated: bytes) -> str:
        """The plaintext; :class:`PiiError` if its key is unknown or anything was altered."""
        aead = self._by_id.get(sealed.key_id)
        if aead is None:
            raise PiiError(f"no key {sealed.key_id} configured")
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, associated).decode("utf-8")
        except InvalidTag:
            raise PiiError("the sealed value or its row was altered") from None


def process_keyring() -> KeyRing | None:
    """The keys of the process settings (``get_settings().pii``)."""
    from bot.settings import get_settings

    return KeyRing.from_settings(get_settings().pii)
