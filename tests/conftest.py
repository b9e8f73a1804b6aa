"""Fixtures shared by the whole test suite."""

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from django.apps import AppConfig
from django.core.cache import cache
from django.db.models.signals import post_migrate
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from core.local_cache import clear_local_caches
from tests.stack_auth import StackAuthFake
from tests.stripe_fake import StripeFake

# --- Stack Auth ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack_auth_server() -> Iterator[StackAuthFake]:
    """Serve one fake Stack Auth JWKS endpoint for the whole session."""
    fake = StackAuthFake()
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _stack_auth_settings(settings: SettingsWrapper, stack_auth_server: StackAuthFake) -> None:
    """Point every test at the fake Stack Auth, with an empty cache and a healthy endpoint."""
    settings.STACK_AUTH_API_URL = stack_auth_server.base_url
    settings.STACK_AUTH_PROJECT_ID = stack_auth_server.project_id
    # Each xdist worker has its own Redis database (see settings/test.py): clearing is safe.
    cache.clear()
    # What the process keeps in memory (signing keys, verified tokens, plan rates) too.
    clear_local_caches()
    stack_auth_server.reset()


@pytest.fixture
def stack_auth(stack_auth_server: StackAuthFake) -> StackAuthFake:
    """Return the fake Stack Auth, to mint tokens or make its JWKS endpoint fail."""
    return stack_auth_server


@pytest.fixture
def owner_headers(stack_auth: StackAuthFake) -> Callable[..., dict[str, str]]:
    """Return a function giving Django test client headers that authenticate an owner."""

    def headers(sub: str = "user_1") -> dict[str, str]:
        return {"HTTP_X_STACK_ACCESS_TOKEN": stack_auth.token(sub)}

    return headers


@pytest.fixture
def api_client() -> APIClient:
    """Return a DRF test client."""
    return APIClient()


# --- Stripe ----------------------------------------------------------------------------------

STRIPE_KEY = "sk_test_51" + "A1zapFakeKey0123456789ab"
STRIPE_WEBHOOK_SECRET = "whsec_test_a1zap_webhook_secret"


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeFake]:
    fake = StripeFake()
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture
def fake(stripe_server: StripeFake, settings: Any, monkeypatch: pytest.MonkeyPatch) -> StripeFake:
    """Point our client and dj-stripe (which reads the SDK's global base) at the fake."""
    stripe_server.reset()
    settings.STRIPE_SECRET_KEY = STRIPE_KEY
    settings.STRIPE_TEST_SECRET_KEY = STRIPE_KEY
    settings.STRIPE_LIVE_SECRET_KEY = ""
    settings.STRIPE_LIVE_MODE = False
    settings.STRIPE_API_BASE = stripe_server.base_url
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    monkeypatch.setattr(stripe, "api_base", stripe_server.base_url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    return stripe_server


# --- background work ---------------------------------------------------------------------


@pytest.fixture
def start_worker(transactional_db: None, settings: Any) -> Iterator[Callable[[], Any]]:
    """Start a real Celery worker when the test says so (`with start_worker(): ...`): in a
    thread of this process, on the test broker, emptied first of what earlier tests queued
    and no worker ran. Messages are serialised to JSON and go through Redis; tasks see only
    committed rows (the test's database is transactional). Retries are quick (fractions of a
    second) and give up after three."""
    from celery.contrib.testing.worker import start_worker as start_celery_worker

    from a1zap.celery import app

    settings.JOBS_RETRY_FIRST_DELAY = 0.2
    settings.JOBS_RETRY_MAX_DELAY = 0.4
    settings.JOBS_MAX_RETRIES = 3
    settings.WEBHOOK_RETRY_FIRST_DELAY = 0.2
    settings.WEBHOOK_RETRY_MAX_DELAY = 0.4
    settings.WEBHOOK_MAX_RETRIES = 3
    app.control.purge()

    def start() -> Any:
        return start_celery_worker(
            app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
            shutdown_timeout=30,
        )  # fmt: skip

    yield start
    from django.db import connection, connections

    connections.close_all()
    # The worker ran in a thread of its own, with its own (thread-local) connection, which
    # this thread cannot close; it would outlive the test and keep the test database from
    # being dropped at the end of the run. This database is this pytest process's alone.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture
def worker(start_worker: Callable[[], Any]) -> Iterator[Any]:
    """A real Celery worker running for the whole test (see `start_worker`)."""
    with start_worker() as started:
        yield started


# --- database --------------------------------------------------------------------------------


def _seed_reference_data(sender: AppConfig, **kwargs: Any) -> None:
    """Re-seed what the data migrations write, with the migrations' own functions.

    A transactional test ends with `flush`, which empties every table, then emits
    post_migrate; without this the next test (or the next --reuse-db run) has no plans.
    """
    if sender.name != "billing":
        return
    from django.apps import apps as django_apps

    importlib.import_module("billing.migrations.0002_default_plans").insert_default_plans(
        django_apps, None
    )
    importlib.import_module("billing.migrations.0004_plan_quotas_and_rates").set_plan_terms(
        django_apps, None
    )


@pytest.fixture(scope="session", autouse=True)
def _reference_data_survives_flush() -> Iterator[None]:
    post_migrate.connect(_seed_reference_data, dispatch_uid="tests-seed-reference-data")
    yield
    post_migrate.disconnect(dispatch_uid="tests-seed-reference-data")


@pytest.fixture
def default_plans(transactional_db: None) -> None:
    """Make sure the default plans exist (they do: see _seed_reference_data); kept for clarity
    in transactional tests, whose data setup depends on them."""
    from django.apps import apps as django_apps

    _seed_reference_data(django_apps.get_app_config("billing"))
