"""The per-plan throttle: one Redis round trip a request, exact under races, rates kept briefly."""

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import redis.connection
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents.services import agent_create
from billing.models import SubscriptionPlan
from tests.concurrency import race

URL = "/api/v1/usage/events/"


@pytest.fixture
def app_headers(db: None) -> dict[str, str]:
    _, key = agent_create(owner_id="user_1", name="Bot", handle="throttle_bot", agent_type="work")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def redis_round_trips(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count what is written to Redis sockets: one write per command, or per pipeline."""
    sent = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return lambda: sent[0]


def post(client: APIClient, headers: dict[str, str], event_id: str) -> int:
    return int(client.post(URL, {"id": event_id}, format="json", **headers).status_code)


def test_an_apps_request_costs_the_throttle_one_redis_round_trip(
    api_client: APIClient, app_headers: dict[str, str], redis_round_trips: Callable[[], int]
) -> None:
    assert post(api_client, app_headers, "warm-up") == 202
    before = redis_round_trips()

    with CaptureQueriesContext(connection) as queries:
        assert post(api_client, app_headers, "counted") == 202

    assert redis_round_trips() - before == 1
    # The plan's rates came from the process's memory: no query for them.
    assert not [q for q in queries if 'FROM "subscription_plans"' in q["sql"]]


def test_a_plan_change_reaches_the_throttle_within_the_rates_cache_time(
    api_client: APIClient, app_headers: dict[str, str]
) -> None:
    SubscriptionPlan.objects.filter(pk="free").update(app_requests_per_minute=2)

    statuses = [post(api_client, app_headers, f"e{n}") for n in range(3)]

    assert statuses == [202, 202, 429]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_racing_requests_get_exactly_the_plans_rate() -> None:
    _, key = agent_create(owner_id="user_r", name="Bot", handle="race_bot", agent_type="work")
    SubscriptionPlan.objects.filter(pk="free").update(app_requests_per_minute=10)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    statuses = race([partial(post, APIClient(), headers, f"r{n}") for n in range(24)])

    assert sorted(statuses).count(202) == 10
    assert sorted(statuses).count(429) == 14
