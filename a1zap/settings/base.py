"""Settings shared by every environment, read from the environment with django-environ.

Every variable of the contract is read here with a default that is safe for a local run;
`production.py` refuses to start without the secrets a real deployment needs.
"""

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# A fixed key is fine for a laptop; production.py rejects it.
DEV_SECRET_KEY = "dev-insecure-a1zap-secret-key-change-me-0123456789abcdef"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

DATABASE_URL_DEFAULT = "postgres://root@127.0.0.1:5432/a1zap"
DATABASES = {"default": env.db_url("DATABASE_URL", default=DATABASE_URL_DEFAULT)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Server-side parameter binding, and statements prepared once a connection has run them
# DATABASE_PREPARE_THRESHOLD times: PostgreSQL then plans a hot query once per connection, not
# on every run (usage ingestion's statement plans in 0.65 ms and runs in 0.4 ms). Django
# prepares nothing unless told to. Behind a transaction-mode pooler that cannot keep prepared
# statements (PgBouncer < 1.21, or without max_prepared_statements), set
# DATABASE_SERVER_SIDE_BINDING=false: then nothing is prepared either.
SERVER_SIDE_BINDING = env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
DATABASES["default"].setdefault("OPTIONS", {}).update(
    server_side_binding=SERVER_SIDE_BINDING,
    prepare_threshold=(
        env.int("DATABASE_PREPARE_THRESHOLD", default=5) if SERVER_SIDE_BINDING else None
    ),
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def pooled_redis(cache: dict[str, Any]) -> dict[str, Any]:
    """Serve a Redis cache through core.cache.PooledRedisCache: one client per process,
    where Django's own backend builds one per call."""
    if cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        return {**cache, "BACKEND": "core.cache.PooledRedisCache"}
    return cache


CACHES = {"default": pooled_redis(env.cache_url("CACHE_URL", default="redis://127.0.0.1:6379/0"))}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "axes",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "djstripe",
    "a1zap",
    "jobs",
    "accounts",
    "agents",
    "billing",
    "teams",
    "usage",
    "conversations",
    "integrations",
    "audit",
    "notifications",
    "invoicing",
    "analytics",
    "agent_templates",
    "console",
    "demo",
]

MIDDLEWARE = [
    "core.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.errors.DependencyOutageMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

# Admin logins: django-axes locks an account and address out after repeated failures.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.int("AXES_COOLOFF_HOURS", default=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# How many proxies of ours (load balancer, reverse proxy) stand in front of the app. The client
# address is the one the outermost of them saw; X-Forwarded-For entries beyond those are the
# client's own writing and ignored. 0 (the default): the header is ignored altogether. The
# anonymous rate limit (DRF's NUM_PROXIES) and the admin lockout (axes) both read it.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
if TRUSTED_PROXY_HOPS < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_HOPS must be 0 or more, not {TRUSTED_PROXY_HOPS}.")
AXES_CLIENT_IP_CALLABLE = "core.client_address.client_ip_address"

# Request bodies: the largest legitimate one is a batch of 1000 usage events (~200 KiB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
# The server (a1zap/server.py) takes each request whole before a thread runs it: its headers
# must arrive within REQUEST_HEADER_TIMEOUT seconds, then its body within REQUEST_BODY_TIMEOUT
# (408 past either); a body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused (413) unread.
REQUEST_HEADER_TIMEOUT = env.float("REQUEST_HEADER_TIMEOUT", default=10.0)
REQUEST_BODY_TIMEOUT = env.float("REQUEST_BODY_TIMEOUT", default=30.0)

# The seed gives a1_agents and user_subscriptions each a CHECK named `valid_status`.
# PostgreSQL scopes CHECK names per table; Django's E032 assumes they are global. A real
# clash of index or unique-constraint names still fails at `migrate`.
SILENCED_SYSTEM_CHECKS = ["models.E032"]

ROOT_URLCONF = "a1zap.urls"
WSGI_APPLICATION = "a1zap.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Stack Auth: owners' access tokens are verified locally against the project's JWKS.
STACK_AUTH_PROJECT_ID = env.str("STACK_AUTH_PROJECT_ID", default="")
STACK_AUTH_API_URL = env.str("STACK_AUTH_API_URL", default="https://api.stack-auth.com").rstrip("/")
STACK_AUTH_WEBHOOK_SECRET = env.str("STACK_AUTH_WEBHOOK_SECRET", default="")

# Stripe, through dj-stripe and the stripe SDK; both are pointed at STRIPE_API_BASE.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith("sk_live_")
STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY if STRIPE_LIVE_MODE else ""
STRIPE_TEST_SECRET_KEY = "" if STRIPE_LIVE_MODE else STRIPE_SECRET_KEY
if STRIPE_API_BASE != "https://api.stripe.com":
    # dj-stripe warns (djstripe.W002) whenever this is set, so only set it when needed.
    STRIPE_API_HOST = STRIPE_API_BASE
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
# Where Stripe Checkout and the customer portal send the user back to (the web app).
BILLING_SUCCESS_URL = env.str(
    "BILLING_SUCCESS_URL", default="https://a1zap.com/billing/success?session={CHECKOUT_SESSION_ID}"
)
BILLING_CANCEL_URL = env.str("BILLING_CANCEL_URL", default="https://a1zap.com/billing")
BILLING_PORTAL_RETURN_URL = env.str(
    "BILLING_PORTAL_RETURN_URL", default="https://a1zap.com/billing"
)
DJSTRIPE_USE_NATIVE_JSONFIELD = True

# Fernet keys, newest first. DEBUG alone gets a fixed development key.
DEV_FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktYTF6YXAtZmllbGQta2V5LTAwMDAwMDA="
# Every Fernet key that ships in the repository (settings, tests, bench, examples): public,
# so production.py refuses each of them. A test fails if a new one is committed unlisted.
SHIPPED_FIELD_ENCRYPTION_KEYS = (DEV_FIELD_ENCRYPTION_KEY,)
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=[DEV_FIELD_ENCRYPTION_KEY] if DEBUG else []
)
# Local development only (production.py refuses it): outbound targets may be http:// and
# loopback (127.0.0.0/8, ::1), e.g. a webhook receiver on http://127.0.0.1:8080/.
WEBHOOK_ALLOW_INSECURE_TARGETS = env.bool("WEBHOOK_ALLOW_INSECURE_TARGETS", default=False)
# Outgoing webhooks (notifications/): how long one delivery attempt may take, and how long a
# rotated-out signing secret keeps signing beside the new one.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# An attempt claims its delivery for the timeout plus this margin: a worker that dies
# mid-attempt leaves it to the next worker (or the sweep) once the claim has run out.
WEBHOOK_CLAIM_MARGIN_SECONDS = env.float("WEBHOOK_CLAIM_MARGIN_SECONDS", default=30.0)
WEBHOOK_SECRET_GRACE_SECONDS = env.int("WEBHOOK_SECRET_GRACE_SECONDS", default=24 * 60 * 60)
# A delivery's retries: exponential from a minute, capped at four hours, with jitter; 15
# retries span about a day (17 to 32 hours). Waits longer than WEBHOOK_QUEUE_HOLD_SECONDS are
# not held in the broker: the delivery's row says when it is due and the sweep sends it.
WEBHOOK_RETRY_FIRST_DELAY = env.float("WEBHOOK_RETRY_FIRST_DELAY", default=60.0)
WEBHOOK_RETRY_MAX_DELAY = env.float("WEBHOOK_RETRY_MAX_DELAY", default=4 * 60 * 60.0)
WEBHOOK_MAX_RETRIES = env.int("WEBHOOK_MAX_RETRIES", default=15)
WEBHOOK_QUEUE_HOLD_SECONDS = env.float("WEBHOOK_QUEUE_HOLD_SECONDS", default=10 * 60.0)
# An endpoint that has answered nothing but failures for this long is disabled, and its owner
# emailed.
# Outgoing events (and their delivery log) are kept this many days: how far a replay reaches.
WEBHOOK_EVENTS_KEPT_DAYS = env.int("WEBHOOK_EVENTS_KEPT_DAYS", default=30)
# Pings and replays an owner may ask of one endpoint per minute (beside the plan's limit).
WEBHOOK_ACTIONS_PER_MINUTE = env.int("WEBHOOK_ACTIONS_PER_MINUTE", default=10)
WEBHOOK_DISABLE_AFTER_SECONDS = env.int("WEBHOOK_DISABLE_AFTER_SECONDS", default=5 * 24 * 60 * 60)

# Email to owners (usage alerts): EMAIL_URL as django-environ reads it, e.g.
# smtp+tls://user:password@smtp.example.com:587; the default prints each email to the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="A1Zap <no-reply@a1zap.local>")

# Background work (a1zap/celery.py): Celery on a Redis database of its own, apart from the
# cache's, so that no cache eviction or flush ever drops a queued job.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/1")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# JSON only: a message is data, never a pickled object a worker would execute.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# Nothing reads task results: no result backend, none stored.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged once it has run, so a worker that dies mid-task (killed, out of
# memory, its host gone) has it delivered again; tasks are idempotent for that reason.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The longest job (the monthly close's SQL at 100,000 agents takes about a minute) is stopped
# at CELERY_TASK_TIME_LIMIT; Redis redelivers a message not acknowledged within the visibility
# timeout, so it must exceed both that limit and the longest retry delay (JOBS_RETRY_MAX_DELAY).
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT - 60, CELERY_TASK_TIME_LIMIT * 0.9)
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=60 * 60)
# Other options of kombu's transport, as a JSON object (e.g. how often a worker looks for
# messages whose worker died: {"unacked_restore_interval": 10, "unacked_restore_throttle": 10}).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    **env.json("CELERY_BROKER_TRANSPORT_OPTIONS", default={}),
}
# Celery's Django fix-up closes the database connection around every task unless told to
# reuse it: a new PostgreSQL connection per task held one worker to about 100 tasks/s here
# (`make bench`). Reused, it is closed every CELERY_DB_REUSE_MAX tasks, and after each task
# when broken or older than CONN_MAX_AGE, as after a request (a1zap/celery.py).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Retries of a failing side effect: exponential from the first delay, capped, with jitter.
JOBS_RETRY_FIRST_DELAY = env.float("JOBS_RETRY_FIRST_DELAY", default=60.0)
JOBS_RETRY_MAX_DELAY = env.float("JOBS_RETRY_MAX_DELAY", default=30 * 60.0)
# Retries before a job is recorded as failed (about four hours of trying with the defaults).
JOBS_MAX_RETRIES = env.int("JOBS_MAX_RETRIES", default=12)
if max(CELERY_TASK_TIME_LIMIT, JOBS_RETRY_MAX_DELAY) >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT and JOBS_RETRY_MAX_DELAY, "
        "or Redis hands a running or waiting task to a second worker."
    )

REST_FRAMEWORK = {
    # The first class's `authenticate_header` makes unauthenticated answers 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.StackAuthAuthentication",
        "agents.authentication.AppKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.NewestFirstCursorPagination",
    # django-filter's backend, building no filter form for a request that names no filter.
    "DEFAULT_FILTER_BACKENDS": ["core.filters.FilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["billing.throttling.PlanRateThrottle"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "NUM_PROXIES": TRUSTED_PROXY_HOPS,
}

# Requests per minute per IP address on the public, unauthenticated endpoints.
ANON_REQUESTS_PER_MINUTE = env.int("ANON_REQUESTS_PER_MINUTE", default=120)

SPECTACULAR_SETTINGS = {
    "TITLE": "A1Zap API",
    "DESCRIPTION": "AI agents with a public @handle, their apps, usage, conversations and billing.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI's assets are served from our static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1 for its `webhooks`: the body of every event an owner's endpoints receive.
    "OAS_VERSION": "3.1.0",
    "WEBHOOKS": "notifications.api.event_schemas.EVENT_WEBHOOKS",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.add_error_responses",
        "core.openapi.simplify_nullable_any",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.AgentStatus",
        "AgentTypeEnum": "agents.models.AgentType",
        "AgentMemberRoleEnum": "agents.models.AgentMemberRole",
        "AgentAccessEnum": "agents.models.AgentAccess",
        # Messages had the only `role` before agent members had one: it keeps its name.
        "RoleEnum": "conversations.models.MessageRole",
    },
}

# One JSON object per line (LOG_FORMAT=json, the default) or plain text, each with the
# request id of the request it belongs to.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.request_id.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
