"""Encryption at rest for personal data and integration secrets.

Values are encrypted with MultiFernet over `FIELD_ENCRYPTION_KEYS` (newest first): the first
key encrypts, every key decrypts, so keys rotate without downtime (`manage.py
rotate_encryption_key` re-encrypts old values). Ciphertext is random, so equality lookups go
through `lookup_hash`, an HMAC-SHA256 keyed separately from the encryption keys.
"""

import hashlib
import hmac
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
