"""Reading usage: an agent's days, an owner's month, the operator's report, pruning."""

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import A1Agent
from billing.models import UserSubscription
from tests.factories import AgentFactory, UsageFactory
from usage.models import UsageEventId, UserMonthlyUsage
from usage.selectors import _projected

pytestmark = pytest.mark.django_db


@pytest.fixture
def september() -> dict[str, Any]:
    """A known month for user_1 on pro: hand-computed totals below."""
    UserSubscription.objects.create(user_id="user_1", plan_id="pro")
    alpha = AgentFactory.create(owner_id="user_1", handle="alpha")
    beta = AgentFactory.create(owner_id="user_1", handle="beta", agent_type="work")
    AgentFactory.create(owner_id="user_1", handle="gamma")  # no usage at all
    other = AgentFactory.create(owner_id="user_2", handle="other")
    rows = [
        (alpha, dt.date(2026, 9, 1), 30_000, 100, 10, 500, "61.0510"),
        (alpha, dt.date(2026, 9, 15), 15_000, 0, 0, 800, "30.0000"),
        (beta, dt.date(2026, 9, 10), 10_000, 40, 3600, 0, "20.3800"),
        (alpha, dt.date(2026, 10, 1), 999, 0, 0, 0, "1.9980"),  # next month
        (other, dt.date(2026, 9, 1), 5, 0, 0, 0, "0.0100"),  # another owner
    ]
    for agent, day, messages, calls, seconds, storage, cost in rows:
        UsageFactory.create(
            agent=agent, date=day, message_count=messages, api_calls=calls,
            compute_seconds=seconds, storage_bytes=storage, estimated_cost=Decimal(cost),
        )  # fmt: skip
    UserMonthlyUsage.objects.create(
        user_id="user_1", month=dt.date(2026, 9, 1), message_count=55_000
    )
    return {"alpha": alpha, "beta": beta, "other": other}


def test_summary_of_a_past_month_on_a_known_data_set(
    api_client: APIClient, owner_headers: Any, september: dict[str, Any]
) -> None:
    response = api_client.get("/api/v1/usage/summary/?month=2026-09", **owner_headers())

    assert response.status_code == 200
    body = response.json()
    by_handle = {agent["handle"]: agent for agent in body["agents"]}
    assert set(by_handle) == {"alpha", "beta", "gamma"}
    assert by_handle["alpha"]["messages"] == 45_000
    assert by_handle["alpha"]["storage_bytes"] == 800
    assert by_handle["alpha"]["estimated_cost"] == "91.0510"
    assert by_handle["beta"]["compute_seconds"] == 3600
    assert by_handle["gamma"]["messages"] == 0
    assert body["totals"] == {
        "messages": 55_000, "api_calls": 140, "compute_seconds": 3610, "storage_bytes": 800,
        "estimated_cost": "111.4310",
    }  # fmt: skip
    assert body["plan"] == "pro"
    assert body["included_messages"] == 50_000
    assert body["messages_used"] == 55_000
    assert body["quota_used_percent"] == 110.0
    assert body["projected_messages"] == 55_000  # the month is over: projection = actual
    assert body["projected_overage_messages"] == 5_000
    assert body["projected_overage_cost"] == "10.00"  # 5,000 x 0.002


def test_summary_of_a_hard_capped_plan_projects_no_overage(
    api_client: APIClient, owner_headers: Any
) -> None:
    UserMonthlyUsage.objects.create(user_id="user_1", month=dt.date(2026, 9, 1), message_count=1000)

    body = api_client.get("/api/v1/usage/summary/?month=2026-09", **owner_headers()).json()

    assert (body["plan"], body["hard_cap"], body["quota_used_percent"]) == ("free", True, 100.0)
    assert body["projected_overage_cost"] == "0.00"


@pytest.mark.parametrize("month", ["2026-13", "2026-9", "september", "1999-01"])
def test_summary_refuses_a_bad_month(api_client: APIClient, owner_headers: Any, month: str) -> None:
    response = api_client.get(f"/api/v1/usage/summary/?month={month}", **owner_headers())

    assert response.status_code == 400
    assert "month" in response.json()["errors"]


def test_projection_extrapolates_the_current_month_by_days_elapsed() -> None:
    september = dt.date(2026, 9, 1)

    assert _projected(1000, september, dt.date(2026, 9, 10)) == 3000  # 1000 / 10 days x 30
    assert _projected(1000, september, dt.date(2026, 9, 30)) == 1000
    assert _projected(1000, september, dt.date(2026, 10, 5)) == 1000
    assert _projected(1000, september, dt.date(2026, 8, 5)) == 0


def test_agent_usage_lists_days_in_range_oldest_first(
    api_client: APIClient, owner_headers: Any, september: dict[str, Any]
) -> None:
    alpha = september["alpha"]

    response = api_client.get(
        f"/api/v1/agents/{alpha.pk}/usage/?start=2026-09-01&end=2026-09-30", **owner_headers()
    )

    assert response.status_code == 200
    days = response.json()["days"]
    assert [(d["date"], d["message_count"]) for d in days] == [
        ("2026-09-01", 30_000), ("2026-09-15", 15_000),
    ]  # fmt: skip


def test_agent_usage_defaults_to_the_last_30_days(
    api_client: APIClient, owner_headers: Any
) -> None:
    agent = AgentFactory.create(owner_id="user_1")
    today = timezone.now().date()
    for days_ago in (0, 29, 30):
        UsageFactory.create(agent=agent, date=today - dt.timedelta(days=days_ago), message_count=1)

    body = api_client.get(f"/api/v1/agents/{agent.pk}/usage/", **owner_headers()).json()

    assert body["start"] == (today - dt.timedelta(days=29)).isoformat()
    assert len(body["days"]) == 2


@pytest.mark.parametrize(
    "query", ["start=2026-09-10&end=2026-09-01", "start=2024-01-01&end=2026-01-01", "start=nope"]
)
def test_agent_usage_refuses_a_bad_range(
    api_client: APIClient, owner_headers: Any, query: str
) -> None:
    agent = AgentFactory.create(owner_id="user_1")

    response = api_client.get(f"/api/v1/agents/{agent.pk}/usage/?{query}", **owner_headers())

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_another_owners_agent_usage_is_404(
    api_client: APIClient, owner_headers: Any, september: dict[str, Any]
) -> None:
    response = api_client.get(f"/api/v1/agents/{september['other'].pk}/usage/", **owner_headers())

    assert response.status_code == 404


def test_usage_report_csv_lists_every_agent_with_usage_by_user(september: dict[str, Any]) -> None:
    out = io.StringIO()

    call_command("usage_report", "--month", "2026-09", "--format", "csv", stdout=out)

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["user_id"], r["handle"], r["messages"]) for r in rows] == sorted(
        [("user_1", "alpha", "45000"), ("user_1", "beta", "10000"), ("user_2", "other", "5")],
        key=lambda row: (row[0], str(A1Agent.objects.get(handle=row[1]).pk)),
    )
    alpha = next(r for r in rows if r["handle"] == "alpha")
    assert (alpha["days_active"], alpha["max_storage_bytes"], alpha["estimated_cost"]) == (
        "2", "800", "91.0510",
    )  # fmt: skip


def test_usage_report_json_is_one_array(september: dict[str, Any]) -> None:
    out = io.StringIO()

    call_command("usage_report", "--month", "2026-09", "--format", "json", stdout=out)

    records = json.loads(out.getvalue())
    assert {record["handle"]: record["messages"] for record in records} == {
        "alpha": 45_000, "beta": 10_000, "other": 5,
    }  # fmt: skip


def test_usage_report_of_an_empty_month_is_an_empty_array() -> None:
    out = io.StringIO()

    call_command("usage_report", "--month", "2020-01", "--format", "json", stdout=out)

    assert json.loads(out.getvalue()) == []


def test_prune_forgets_event_ids_past_the_window_only() -> None:
    agent = AgentFactory.create()
    now = timezone.now()
    UsageEventId.objects.create(
        agent=agent, event_id="old", occurred_at=now - dt.timedelta(days=40)
    )
    UsageEventId.objects.create(agent=agent, event_id="new", occurred_at=now - dt.timedelta(days=3))

    call_command("prune_usage_event_ids", "--batch-size", "1", stdout=io.StringIO())

    assert list(UsageEventId.objects.values_list("event_id", flat=True)) == ["new"]
