"""Production settings: secure defaults, and a clear refusal to start without the secrets."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY, FIELD_ENCRYPTION_KEYS, SECRET_KEY, STACK_AUTH_PROJECT_ID, env

DEBUG = False

_missing = [
    name
    for name, value in (
        ("SECRET_KEY", SECRET_KEY if SECRET_KEY != DEV_SECRET_KEY else ""),
        ("FIELD_ENCRYPTION_KEYS", ",".join(FIELD_ENCRYPTION_KEYS)),
        ("STACK_AUTH_PROJECT_ID", STACK_AUTH_PROJECT_ID),
    )
    if not value
]
if _missing:
    raise ImproperlyConfigured(
        "Production needs these environment variables set: " + ", ".join(_missing)
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
