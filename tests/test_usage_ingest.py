"""Usage ingestion: idempotent, all-or-nothing, gauge and counter semantics, quotas, limits."""

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create
from billing.models import SubscriptionPlan, UserSubscription
from tests.concurrency import race
from usage.models import AgentUsage, UsageEventId, UserMonthlyUsage
from usage.services import usage_record_message

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/events/"


@pytest.fixture
def app() -> tuple[A1Agent, dict[str, str]]:
    """An active agent of user_1 and the headers its app authenticates with."""
    agent, key = agent_create(
        owner_id="user_1", name="Bot", handle="usage_bot", agent_type="personal"
    )
    return agent, {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def post(api_client: APIClient, headers: dict[str, str], body: Any) -> Any:
    return api_client.post(URL, body, format="json", **headers)


def usage_of(agent: A1Agent) -> dict[dt.date, tuple[int | None, ...]]:
    return {
        row.date: (row.message_count, row.api_calls, row.compute_seconds, row.storage_bytes)
        for row in AgentUsage.objects.filter(agent=agent)
    }


def at(days_ago: int = 0, hour: int = 12) -> str:
    moment = timezone.now() - dt.timedelta(days=days_ago)
    if days_ago:
        moment = moment.replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.isoformat()


def test_a_single_event_is_counted_on_its_utc_day(api_client: APIClient, app: Any) -> None:
    agent, headers = app

    response = post(api_client, headers, {"id": "e1", "messages": 2, "api_calls": 3})

    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert usage_of(agent) == {timezone.now().date(): (2, 3, 0, 0)}


OFFSETS = {
    "+05:30": dt.timedelta(hours=5, minutes=30),
    "-09:00": -dt.timedelta(hours=9),
    "+05:30:15": dt.timedelta(hours=5, minutes=30, seconds=15),
    "+05:30:15.5": dt.timedelta(hours=5, minutes=30, seconds=15.5),
}


@pytest.mark.parametrize("offset", OFFSETS)
def test_an_event_with_any_offset_python_reads_is_counted_on_its_utc_day(
    api_client: APIClient, app: Any, offset: str
) -> None:
    """The batch reaches PostgreSQL in UTC: it refused an offset with fractional seconds
    (`+05:30:15.5`), which Python's parser takes, as `invalid input syntax`."""
    agent, headers = app
    moment = (timezone.now() - dt.timedelta(hours=1)).astimezone(dt.timezone(OFFSETS[offset]))
    stamp = moment.replace(tzinfo=None).isoformat() + offset

    response = post(api_client, headers, {"id": f"e{offset}", "timestamp": stamp, "messages": 1})

    assert response.status_code == 202, response.content
    assert usage_of(agent) == {moment.astimezone(dt.UTC).date(): (1, 0, 0, 0)}


def test_a_batch_adds_up_per_day_with_estimated_cost(api_client: APIClient, app: Any) -> None:
    agent, headers = app
    events = [
        {"id": "a", "timestamp": at(2, 9), "messages": 1, "api_calls": 10, "compute_seconds": 5},
        {"id": "b", "timestamp": at(2, 15), "messages": 4},
        {"id": "c", "timestamp": at(1), "compute_seconds": 100},
    ]

    response = post(api_client, headers, {"events": events})

    two_days_ago = (timezone.now() - dt.timedelta(days=2)).date()
    yesterday = (timezone.now() - dt.timedelta(days=1)).date()
    assert response.json() == {"accepted": 3, "duplicates": 0}
    assert usage_of(agent) == {two_days_ago: (5, 10, 5, 0), yesterday: (0, 0, 100, 0)}
    # free plan unit prices: 0.002 per message, 0.0005 per call, 0.0001 per compute second
    costs = dict(AgentUsage.objects.filter(agent=agent).values_list("date", "estimated_cost"))
    assert costs[two_days_ago] == Decimal("0.0155")
    assert costs[yesterday] == Decimal("0.0100")


def test_a_repeated_id_is_counted_once_across_batches_and_within_one(
    api_client: APIClient, app: Any
) -> None:
    agent, headers = app

    first = post(api_client, headers, {"events": [{"id": "x", "messages": 1}] * 3})
    retry = post(api_client, headers, {"events": [{"id": "x", "messages": 1}, {"id": "y"}]})

    assert first.json() == {"accepted": 1, "duplicates": 2}
    assert retry.json() == {"accepted": 1, "duplicates": 1}
    assert usage_of(agent)[timezone.now().date()][0] == 1


def test_the_same_id_for_another_agent_is_a_different_event(
    api_client: APIClient, app: Any
) -> None:
    _, headers = app
    other, other_key = agent_create(
        owner_id="user_2", name="Other", handle="other_bot", agent_type="work"
    )

    post(api_client, headers, {"id": "shared", "messages": 1})
    response = post(
        api_client, {"HTTP_AUTHORIZATION": f"Bearer {other_key}"}, {"id": "shared", "messages": 1}
    )

    assert response.json() == {"accepted": 1, "duplicates": 0}
    assert usage_of(other)[timezone.now().date()][0] == 1


def test_storage_is_a_gauge_keeping_the_latest_measurement(api_client: APIClient, app: Any) -> None:
    agent, headers = app
    today = timezone.now().replace(minute=0, second=0, microsecond=0)
    early, late = (today - dt.timedelta(hours=2)).isoformat(), today.isoformat()

    post(api_client, headers, {"events": [
        {"id": "s1", "timestamp": late, "storage_bytes": 500},
        {"id": "s2", "timestamp": early, "storage_bytes": 900},
    ]})  # fmt: skip
    post(api_client, headers, {"id": "s3", "timestamp": early, "storage_bytes": 100})
    post(api_client, headers, {"id": "s4", "messages": 1})

    assert usage_of(agent)[today.date()] == (1, 0, 0, 500)


@pytest.mark.parametrize(
    "body",
    [
        {"id": "n", "messages": -1},
        {"id": "t", "messages": "many"},
        {"id": "f", "messages": 1.5},
        {"messages": 1},
        {"id": "", "messages": 1},
        {"id": "o", "timestamp": "2020-01-01T00:00:00Z"},
        {"id": "f", "timestamp": "2999-01-01T00:00:00Z"},
        {"id": "z", "timestamp": "yesterday"},
        {"id": "u", "messages": 1, "tokens": 5},
        {"id": "b", "messages": 10**12},
        {"events": []},
        {"events": [{"id": str(n)} for n in range(1001)]},
        {"events": "not a list"},
        [{"id": "list-at-top"}],
    ],
)
def test_bad_input_is_400_and_nothing_is_counted(
    api_client: APIClient, app: Any, body: Any
) -> None:
    agent, headers = app

    response = post(api_client, headers, body)

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert not AgentUsage.objects.filter(agent=agent).exists()
    assert not UsageEventId.objects.filter(agent=agent).exists()


def test_one_bad_event_fails_the_whole_batch_and_is_named(api_client: APIClient, app: Any) -> None:
    agent, headers = app
    events = [{"id": "ok1", "messages": 1}, {"id": "ok2"}, {"id": "bad", "api_calls": -5}]

    response = post(api_client, headers, {"events": events})

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "events": {"2": {"api_calls": ["Ensure this value is greater than or equal to 0."]}}
    }
    assert not AgentUsage.objects.filter(agent=agent).exists()
    assert not UsageEventId.objects.exists()


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_a_paused_or_archived_agent_gets_409_and_accrues_nothing(
    api_client: APIClient, app: Any, status: str
) -> None:
    agent, headers = app
    A1Agent.objects.filter(pk=agent.pk).update(status=status)

    response = post(api_client, headers, {"id": "p", "messages": 1})

    assert response.status_code == 409
    assert response.json()["code"] == "agent_not_active"
    assert not AgentUsage.objects.filter(agent=agent).exists()
    assert not UserMonthlyUsage.objects.exists()


def test_owners_cannot_report_usage(api_client: APIClient, owner_headers: Any) -> None:
    response = post(api_client, owner_headers(), {"id": "o", "messages": 1})

    assert response.status_code == 403


def test_hard_cap_refuses_messages_past_the_monthly_quota(api_client: APIClient, app: Any) -> None:
    agent, headers = app
    month = timezone.now().date().replace(day=1)
    UserMonthlyUsage.objects.create(user_id="user_1", month=month, message_count=998)

    fits = post(api_client, headers, {"id": "m1", "messages": 2})
    over = post(api_client, headers, {"id": "m2", "messages": 1})
    no_messages = post(api_client, headers, {"id": "m3", "api_calls": 7})

    assert fits.status_code == 202
    assert over.status_code == 429
    assert over.json()["code"] == "quota_exceeded"
    assert over.json()["limit"] == 1000
    assert no_messages.status_code == 202
    assert UserMonthlyUsage.objects.get(user_id="user_1").message_count == 1000
    assert usage_of(agent)[timezone.now().date()][:2] == (2, 7)
    assert not UsageEventId.objects.filter(event_id="m2").exists()  # a later retry can count


def test_soft_quota_lets_messages_through_for_overage_billing(
    api_client: APIClient, app: Any
) -> None:
    _, headers = app
    UserSubscription.objects.filter(user_id="user_1").update(plan_id="pro")
    month = timezone.now().date().replace(day=1)
    UserMonthlyUsage.objects.create(user_id="user_1", month=month, message_count=50_000)

    response = post(api_client, headers, {"id": "over", "messages": 5})

    assert response.status_code == 202
    assert UserMonthlyUsage.objects.get(user_id="user_1").message_count == 50_005


def test_the_quota_counts_per_calendar_month(api_client: APIClient, app: Any) -> None:
    _, headers = app
    today = timezone.now()
    last_month_day = today.replace(day=1) - dt.timedelta(days=1)
    if (today - last_month_day).days > 34:
        pytest.skip("the previous month is outside the 35-day window today")

    post(api_client, headers, {"events": [
        {"id": "old", "timestamp": last_month_day.isoformat(), "messages": 3},
        {"id": "new", "messages": 1},
    ]})  # fmt: skip

    months = dict(UserMonthlyUsage.objects.values_list("month", "message_count"))
    assert months == {last_month_day.date().replace(day=1): 3, today.date().replace(day=1): 1}


def test_ingestion_runs_the_same_queries_for_1_and_1000_events(
    api_client: APIClient, app: Any
) -> None:
    _, headers = app
    post(api_client, headers, {"id": "warm"})
    with CaptureQueriesContext(connection) as one:
        post(api_client, headers, {"events": [{"id": "single", "messages": 1}]})
    thousand = [
        {"id": f"e{n}", "timestamp": at(n % 30), "messages": 1, "storage_bytes": n}
        for n in range(1000)
    ]

    with CaptureQueriesContext(connection) as many:
        response = post(api_client, headers, {"events": thousand})

    assert response.json() == {"accepted": 1000, "duplicates": 0}
    assert len(many) == len(one)


def test_app_requests_are_throttled_per_plan_with_retry_after(
    api_client: APIClient, app: Any
) -> None:
    _, headers = app
    SubscriptionPlan.objects.filter(pk="free").update(app_requests_per_minute=3)

    statuses = [post(api_client, headers, {"id": f"r{n}"}).status_code for n in range(3)]
    refused = post(api_client, headers, {"id": "r4"})

    assert statuses == [202, 202, 202]
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert not UsageEventId.objects.filter(event_id="r4").exists()


def test_owner_requests_are_throttled_per_plan(api_client: APIClient, owner_headers: Any) -> None:
    SubscriptionPlan.objects.filter(pk="free").update(owner_requests_per_minute=2)
    headers = owner_headers()

    statuses = [api_client.get("/api/v1/agents/", **headers).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_requests_are_let_through_when_redis_is_down(
    api_client: APIClient, app: Any, settings: Any
) -> None:
    agent, headers = app
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }

    response = post(api_client, headers, {"id": "no-redis", "messages": 1})

    assert response.status_code == 202
    assert usage_of(agent)[timezone.now().date()][0] == 1


def test_record_message_counts_one_message_in_the_callers_transaction(app: Any) -> None:
    agent, _ = app

    with transaction.atomic():
        usage_record_message(agent_id=agent.pk)
        usage_record_message(agent_id=agent.pk)

    assert usage_of(agent)[timezone.now().date()][0] == 2
    assert UserMonthlyUsage.objects.get(user_id="user_1").message_count == 2


@pytest.mark.django_db(transaction=True)
def test_record_message_refuses_to_run_outside_a_transaction(app: Any) -> None:
    agent, _ = app

    with pytest.raises(RuntimeError):
        usage_record_message(agent_id=agent.pk)


# The race tests need committed data and threads with their own connections.


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_concurrent_overlapping_batches_count_every_id_exactly_once() -> None:
    agent, key = agent_create(owner_id="racer", name="Race", handle="race_bot", agent_type="work")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    UserSubscription.objects.filter(user_id="racer").update(plan_id="pro")

    def sender(offset: int) -> Callable[[], int]:
        # Each thread sends ids offset..offset+199: neighbours overlap by half.
        events = [
            {"id": f"id{n}", "messages": 1, "api_calls": 2} for n in range(offset, offset + 200)
        ]

        def send() -> int:
            client = APIClient()
            return sum(
                client.post(URL, {"events": events[i : i + 50]}, format="json", **headers).json()[
                    "accepted"
                ]
                for i in range(0, 200, 50)
            )

        return send

    accepted = race([sender(100 * n) for n in range(8)])

    distinct_ids = 100 * 7 + 200
    assert sum(accepted) == distinct_ids
    row = AgentUsage.objects.get(agent=agent)
    assert (row.message_count, row.api_calls) == (distinct_ids, 2 * distinct_ids)
    assert UsageEventId.objects.filter(agent=agent).count() == distinct_ids
    assert UserMonthlyUsage.objects.get(user_id="racer").message_count == distinct_ids


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_concurrent_messages_cannot_pass_the_hard_cap() -> None:
    agent, key = agent_create(owner_id="capped", name="Cap", handle="cap_bot", agent_type="work")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    month = timezone.now().date().replace(day=1)
    UserMonthlyUsage.objects.create(user_id="capped", month=month, message_count=990)

    def sender(n: int) -> Callable[[], int]:
        return lambda: (
            APIClient()
            .post(URL, {"id": f"c{n}", "messages": 1}, format="json", **headers)
            .status_code
        )

    statuses = race([sender(n) for n in range(30)])

    assert statuses.count(202) == 10
    assert statuses.count(429) == 20
    assert UserMonthlyUsage.objects.get(user_id="capped").message_count == 1000
    assert AgentUsage.objects.get(agent=agent).message_count == 10


def test_an_agent_that_reported_usage_can_be_deleted_with_everything_under_it(
    api_client: APIClient, owner_headers: Any
) -> None:
    created = api_client.post(
        "/api/v1/agents/", {"name": "D", "handle": "deleted_bot", "agent_type": "work"},
        format="json", **owner_headers(),
    ).json()  # fmt: skip
    reported = post(
        api_client,
        {"HTTP_AUTHORIZATION": f"Bearer {created['app_key']}"},
        {"id": "e", "messages": 1},
    )

    deleted = api_client.delete(f"/api/v1/agents/{created['id']}/", **owner_headers())

    assert reported.status_code == 202
    assert deleted.status_code == 204
    assert not UsageEventId.objects.filter(agent_id=created["id"]).exists()
    assert not AgentUsage.objects.filter(agent_id=created["id"]).exists()
