"""Production settings: secure defaults, and a clear refusal to start without the secrets."""

import base64
import binascii

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    DEV_SECRET_KEY,
    FIELD_ENCRYPTION_KEYS,
    SECRET_KEY,
    SHIPPED_FIELD_ENCRYPTION_KEYS,
    STACK_AUTH_PROJECT_ID,
    WEBHOOK_ALLOW_INSECURE_TARGETS,
    env,
)

DEBUG = False


def _key_bytes(key: str) -> bytes | str:
    """A Fernet key as the 32 bytes it stands for, so that a re-spelled copy is still caught."""
    try:
        return base64.urlsafe_b64decode(key.strip().encode())
    except (binascii.Error, ValueError):
        return key.strip()


_missing = [
    name
    for name, value in (
        ("SECRET_KEY", SECRET_KEY if SECRET_KEY != DEV_SECRET_KEY else ""),
        ("FIELD_ENCRYPTION_KEYS", ",".join(FIELD_ENCRYPTION_KEYS)),
        ("STACK_AUTH_PROJECT_ID", STACK_AUTH_PROJECT_ID),
        # The local default would queue production's jobs on whatever Redis runs beside it.
        ("CELERY_BROKER_URL", env.str("CELERY_BROKER_URL", default="")),
    )
    if not value
]
if _missing:
    raise ImproperlyConfigured(
        "Production needs these environment variables set: " + ", ".join(_missing)
    )

# Keys in the repository are public: data encrypted under one is readable by anyone. Refused
# however they arrive (DEBUG's default, set explicitly, alone or among other keys).
_shipped = {_key_bytes(key) for key in SHIPPED_FIELD_ENCRYPTION_KEYS}
_public_keys = [
    str(position)
    for position, key in enumerate(FIELD_ENCRYPTION_KEYS, start=1)
    if _key_bytes(key) in _shipped
]
if _public_keys:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS holds a key that ships in the repository (position "
        + ", ".join(_public_keys)
        + "): generate a new one with Fernet.generate_key()."
    )
if WEBHOOK_ALLOW_INSECURE_TARGETS:
    raise ImproperlyConfigured(
        "WEBHOOK_ALLOW_INSECURE_TARGETS is for local development only: unset it in production."
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_REFERRER_POLICY = "same-origin"
