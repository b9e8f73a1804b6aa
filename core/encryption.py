"""Encryption at rest for personal data and integration secrets.

Values are encrypted with MultiFernet over `FIELD_ENCRYPTION_KEYS` (newest first): the first
key encrypts, every key decrypts, so keys rotate without downtime (`manage.py
rotate_encryption_key` re-encrypts old values). Ciphertext is random, so equality lookups go
through `lookup_hash`, an HMAC-SHA256 keyed separately from the encryption keys.
"""

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

# Fernet tokens are URL-safe base64 and always start with the version byte 0x80.
FERNET_PREFIX = "gAAAAA"


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: set it to one or more Fernet keys, newest first."
        )
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS holds an invalid key: {error}") from None


def _fernet() -> MultiFernet:
    return _multi_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """Encrypt under the newest key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt with whichever configured key encrypted the value."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError("No configured key decrypts this value.") from None


def reencrypt(ciphertext: str) -> str:
    """Return the value encrypted under the newest key (MultiFernet.rotate)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise DecryptionError("No configured key decrypts this value.") from None


def is_ciphertext(value: str) -> bool:
    return value.startswith(FERNET_PREFIX)


def lookup_hash(value: str | None) -> str | None:
    """Return a keyed hash of a normalised value, for exact-match lookups of encrypted data."""
    if value is None or value == "":
        return None
    key = hashlib.sha256(b"a1zap-lookup-hash:" + settings.SECRET_KEY.encode()).digest()
    normalised = value.strip().casefold().encode()
    return hmac.new(key, normalised, hashlib.sha256).hexdigest()


@dataclass
class Tally:
    rotated: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)


class KeyRotation:
    """Decide, value by value, whether it needs the newest key, and count what happened."""

    def __init__(self, tally: Tally) -> None:
        keys = settings.FIELD_ENCRYPTION_KEYS
        if not keys:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS is empty: nothing can be re-encrypted."
            )
        self.newest = Fernet(keys[0].strip().encode())
        self.tally = tally

    def rotated(self, value: Any, where: str) -> str | None:
        """Return the value under the newest key, or None when it needs no change."""
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not is_ciphertext(value):
            self.tally.unreadable.append(where)
            return None
        try:
            self.newest.decrypt(value.encode())
        except InvalidToken:
            pass
        else:
            self.tally.current += 1
            return None
        try:
            new_value = reencrypt(value)
        except DecryptionError:
            self.tally.unreadable.append(where)
            return None
        self.tally.rotated += 1
        return new_value


class EncryptedTextField(models.TextField):
    """A TEXT column that holds Fernet ciphertext; Python code sees the plaintext."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt(str(value))
