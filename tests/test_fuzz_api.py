"""Schema-driven fuzzing: Schemathesis generates requests for every operation of our OpenAPI
schema and checks that none answers 5xx and every answer conforms to the schema.

It calls the real WSGI application (every middleware, authentication and throttle included)
as an owner with a real Stack Auth token (from the local JWKS) or as an agent's app with a
real key, depending on who the operation is for.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks as openapi_checks

from agents.services import agent_create
from billing.models import SubscriptionPlan
from tests.factories import ConversationFactory

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

# Operations only an agent's app may call; every other one is called as an owner.
APP_OPERATIONS = {
    ("POST", "/api/v1/usage/events/"),
    ("POST", "/api/v1/conversations/"),
    ("POST", "/api/v1/conversations/{id}/messages/"),
}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection_open() -> Iterator[None]:
    """Like Django's test client, keep the request signals from closing the test's database
    connection: its transaction holds the fixtures' data."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_headers(
    owner_headers: Callable[..., dict[str, str]], fake: Any
) -> Callable[[Any], dict[str, str]]:
    """Headers for a case: an app key for app operations, an owner's token otherwise."""
    SubscriptionPlan.objects.update(
        owner_requests_per_minute=1_000_000, app_requests_per_minute=1_000_000
    )
    agent, key = agent_create(
        owner_id="fuzz_owner", name="Fuzz", handle="fuzz_agent", agent_type="work"
    )
    ConversationFactory.create(agent=agent)
    owner = {"x-stack-access-token": owner_headers("fuzz_owner")["HTTP_X_STACK_ACCESS_TOKEN"]}
    app = {"Authorization": f"Bearer {key}"}

    def headers(case: Any) -> dict[str, str]:
        operation = (case.operation.method.upper(), case.operation.path)
        return app if operation in APP_OPERATIONS else owner

    return headers


# Loaded from the application itself at collection (the schema view needs no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
# The same cases every run: CI should not fail on a bug found by chance after a change landed;
# raise max_examples or drop this locally to search wider.
schema.config.generation.update(deterministic=True)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much],
)  # fmt: skip
def test_no_operation_fails_or_breaks_its_schema(
    case: Any, fuzz_headers: Callable[[Any], dict[str, str]]
) -> None:
    case.call_and_validate(headers=fuzz_headers(case), checks=CHECKS)
