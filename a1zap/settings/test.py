"""Settings for the test suite: the real PostgreSQL and Redis, fixed keys, fast hashing."""

import os

from .base import *  # noqa: F403
from .base import DEV_FIELD_ENCRYPTION_KEY, env, pooled_redis

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests use their own Redis databases, one per pytest-xdist worker (gw0 -> 15, gw1 -> 14, ...),
# so that clearing the cache in one worker never touches another's counters.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
CACHES = {
    "default": pooled_redis(
        env.cache_url("TEST_CACHE_URL", default=f"redis://127.0.0.1:6379/{15 - _WORKER % 8}")
    )
}
# The broker likewise, on databases of its own (gw0 -> 7, gw1 -> 6, ...): the cache's are flushed
# between tests, which would drop queued tasks.
CELERY_BROKER_URL = env.str(
    "TEST_CELERY_BROKER_URL", default=f"redis://127.0.0.1:6379/{7 - _WORKER % 8}"
)
# Celery prefers the CELERY_BROKER_URL environment variable to this setting: a developer's
# (or .env's) must not send the suite's tasks to their own broker.
os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
# A key shipped in the repository (SHIPPED_FIELD_ENCRYPTION_KEYS): production refuses it.
FIELD_ENCRYPTION_KEYS = [DEV_FIELD_ENCRYPTION_KEY]
STACK_AUTH_PROJECT_ID = "test-project"
STACK_AUTH_API_URL = "https://stack-auth.test"
# Static files are not collected for tests; let WhiteNoise find them on demand.
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Logins in tests use Client.login(), which passes no request; tests of the lockout turn it on.
AXES_ENABLED = False
LOG_FORMAT = "text"
LOGGING["handlers"]["console"]["formatter"] = "text"  # type: ignore[index]  # noqa: F405
