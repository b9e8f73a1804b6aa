"""App keys: `a1app_` plus 43 random URL-safe characters; only a SHA-256 hash is stored.

A key has 256 bits of entropy, so a fast unsalted hash is safe to store and lets the
authentication look a key up by its hash with one indexed query.
"""

import hashlib
import secrets
from dataclasses import dataclass

APP_KEY_PREFIX = "a1app_"
VISIBLE_PREFIX_LENGTH = len(APP_KEY_PREFIX) + 6


@dataclass(frozen=True)
class NewAppKey:
    """A freshly generated key; `plaintext` is shown to the owner once and never stored."""

    plaintext: str
    prefix: str
    hash: str


def app_key_generate() -> NewAppKey:
    plaintext = APP_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewAppKey(
        plaintext=plaintext,
        prefix=plaintext[:VISIBLE_PREFIX_LENGTH],
        hash=app_key_hash(plaintext),
    )


def app_key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def looks_like_app_key(value: str) -> bool:
    return value.startswith(APP_KEY_PREFIX)
