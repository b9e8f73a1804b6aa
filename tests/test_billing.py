"""Plans, subscriptions, staff changes, the past-due grace period and the monthly close
(without Stripe; tests/test_billing_stripe.py covers the Stripe side)."""

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from agents.services import agent_create, agent_delete
from billing.models import BillingEvent, UserSubscription
from billing.services import subscription_change_plan
from invoicing.closing import close_period_record
from tests.factories import AgentFactory, messages_ingested
from usage.models import UserMonthlyUsage
from usage.services import UsageEvent, usage_ingest

pytestmark = pytest.mark.django_db


def test_plans_are_public_with_prices_limits_and_lookup_keys(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/plans/")

    assert response.status_code == 200
    plans = {plan["id"]: plan for plan in response.json()}
    assert list(plans) == ["free", "pro", "enterprise"]
    assert plans["pro"]["price_monthly"] == "29.99"
    assert (plans["pro"]["max_personal_agents"], plans["pro"]["max_total_agents"]) == (5, 10)
    assert plans["enterprise"]["max_total_agents"] == -1
    assert plans["pro"]["stripe_lookup_keys"] == {
        "month": "a1zap_pro_month", "year": "a1zap_pro_year",
    }  # fmt: skip
    assert plans["free"]["messages_hard_cap"] is True


def test_inactive_plans_are_not_listed(api_client: APIClient) -> None:
    from billing.models import SubscriptionPlan

    SubscriptionPlan.objects.filter(pk="enterprise").update(is_active=False)

    assert [plan["id"] for plan in api_client.get("/api/v1/plans/").json()] == ["free", "pro"]


def test_subscription_of_a_new_user_is_free_and_creates_nothing(
    api_client: APIClient, owner_headers: Any
) -> None:
    response = api_client.get("/api/v1/subscription/", **owner_headers())

    body = response.json()
    assert response.status_code == 200
    assert (body["plan"]["id"], body["status"]) == ("free", "active")
    assert body["limits"] == {"personal": 1, "work": 1, "total": 2}
    assert body["agents"] == {"personal": 0, "work": 0, "total": 0}
    assert body["over_limit"] is False
    assert body["usage"]["included_messages"] == 1000
    assert body["has_billing_account"] is False
    assert not UserSubscription.objects.exists()


def test_subscription_shows_counts_usage_and_over_limit_after_a_downgrade(
    api_client: APIClient, owner_headers: Any
) -> None:
    UserSubscription.objects.create(user_id="user_1", plan_id="pro", max_personal_agents=5,
                                    max_work_agents=5, max_total_agents=10)  # fmt: skip
    for n in range(3):
        agent_create(owner_id="user_1", name="A", handle=f"pers_{n}", agent_type="personal")
    AgentFactory.create(owner_id="user_1", status="archived")
    month = timezone.now().date().replace(day=1)
    UserMonthlyUsage.objects.create(user_id="user_1", month=month, message_count=42)
    subscription_change_plan(user_id="user_1", plan_id="free", actor="test")

    body = api_client.get("/api/v1/subscription/", **owner_headers()).json()

    assert body["plan"]["id"] == "free"
    assert body["agents"] == {"personal": 3, "work": 0, "total": 3}
    assert body["over_limit"] is True
    assert body["over_limits"] == ["personal", "total"]
    assert body["usage"]["messages_used"] == 42


def test_staff_plan_change_is_recorded_and_never_deletes_agents() -> None:
    UserSubscription.objects.create(user_id="user_1", plan_id="pro", max_personal_agents=5,
                                    max_work_agents=5, max_total_agents=10)  # fmt: skip
    agents = [AgentFactory.create(owner_id="user_1") for _ in range(4)]

    subscription = subscription_change_plan(user_id="user_1", plan_id="free", actor="staff:ann")

    assert (subscription.plan_id, subscription.max_total_agents) == ("free", 2)
    event = BillingEvent.objects.get(user_id="user_1")
    assert event.event_type == "plan_changed"
    assert event.metadata == {"from": "pro", "to": "free", "actor": "staff:ann"}
    assert all(type(agent).objects.filter(pk=agent.pk).exists() for agent in agents)


def test_admin_changes_plan_and_limits_through_the_services() -> None:
    staff = User.objects.create_superuser("ops", password="pw")
    subscription = UserSubscription.objects.create(user_id="user_9")
    client = Client()
    client.force_login(staff)
    url = f"/admin/billing/usersubscription/{subscription.pk}/change/"

    response = client.post(url, {
        "plan_id": "pro", "max_personal_agents": "5", "max_work_agents": "5",
        "max_total_agents": "10",
    })  # fmt: skip
    override = client.post(url, {
        "plan_id": "pro", "max_personal_agents": "7", "max_work_agents": "5",
        "max_total_agents": "12",
    })  # fmt: skip

    assert response.status_code == 302
    assert override.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.plan_id, subscription.max_personal_agents) == ("pro", 7)
    events = list(BillingEvent.objects.filter(user_id="user_9").order_by("created_at"))
    assert [event.event_type for event in events] == ["plan_changed", "limits_overridden"]
    assert (events[0].metadata or {})["actor"] == "staff:ops"
    assert (events[1].metadata or {})["to"]["max_total_agents"] == 12


def test_billing_events_are_listed_newest_first_for_their_owner_only(
    api_client: APIClient, owner_headers: Any
) -> None:
    BillingEvent.objects.create(user_id="user_1", event_type="first")
    BillingEvent.objects.create(user_id="user_1", event_type="second")
    BillingEvent.objects.create(user_id="user_2", event_type="someone_else")

    body = api_client.get("/api/v1/billing/events/", **owner_headers()).json()

    assert [event["event_type"] for event in body["results"]] == ["second", "first"]


def test_checkout_and_portal_answer_503_without_stripe(
    api_client: APIClient, owner_headers: Any, settings: Any
) -> None:
    settings.STRIPE_SECRET_KEY = ""

    checkout = api_client.post(
        "/api/v1/billing/checkout/", {"plan": "pro"}, format="json", **owner_headers()
    )
    portal = api_client.post("/api/v1/billing/portal/", **owner_headers())

    assert (checkout.status_code, checkout.json()["code"]) == (503, "billing_unavailable")
    assert (portal.status_code, portal.json()["code"]) == (503, "billing_unavailable")
    assert not UserSubscription.objects.exists()


@pytest.mark.parametrize(
    "body", [{"plan": "free"}, {"plan": "gold"}, {"plan": "pro", "interval": "week"}, {}]
)
def test_checkout_refuses_bad_plans_and_intervals(
    api_client: APIClient, owner_headers: Any, body: dict[str, str]
) -> None:
    response = api_client.post("/api/v1/billing/checkout/", body, format="json", **owner_headers())

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


# --- the past-due grace period ---------------------------------------------------------------


@pytest.mark.parametrize(("days_past_due", "expected"), [(3, 202), (8, 402)])
def test_past_due_keeps_working_through_the_grace_period_then_refuses_usage(
    api_client: APIClient, days_past_due: int, expected: int
) -> None:
    _, key = agent_create(owner_id="late", name="Late", handle="late_bot", agent_type="work")
    UserSubscription.objects.filter(user_id="late").update(
        plan_id="pro", status="past_due",
        past_due_since=timezone.now() - dt.timedelta(days=days_past_due),
    )  # fmt: skip

    response = api_client.post(
        "/api/v1/usage/events/", {"id": "e", "messages": 1}, format="json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )  # fmt: skip

    assert response.status_code == expected
    if expected == 402:
        assert response.json()["code"] == "payment_overdue"


# --- the monthly close -----------------------------------------------------------------------


@pytest.fixture
def september_usage() -> None:
    """Hand-computed: a (pro) 55,500 messages -> 5,500 over x 0.002 = 11.00;
    c (enterprise) 1,000,250 -> 250 over x 0.001 = 0.25; b (free, hard cap), d (pro, under),
    e (no subscription row: free) -> 0.00. October rows must not count."""
    plans = {"a": "pro", "b": "free", "c": "enterprise", "d": "pro"}
    for user, plan in plans.items():
        UserSubscription.objects.create(user_id=f"user_{user}", plan_id=plan)
    usage = {
        "a": [(dt.date(2026, 9, 1), 30_000), (dt.date(2026, 9, 30), 25_500)],
        "b": [(dt.date(2026, 9, 5), 900)],
        "c": [(dt.date(2026, 9, 2), 600_000), (dt.date(2026, 9, 3), 400_250)],
        "d": [(dt.date(2026, 9, 9), 10_000)],
        "e": [(dt.date(2026, 9, 9), 5)],
    }
    for user, days in usage.items():
        for number, (day, messages) in enumerate(days):
            agent = AgentFactory.create(owner_id=f"user_{user}", handle=f"{user}_{number}")
            messages_ingested(agent, day=day, messages=messages)
    october_agent = AgentFactory.create(owner_id="user_a", handle="a_october")
    messages_ingested(october_agent, day=dt.date(2026, 10, 1), messages=99_999)


def closed_rows() -> dict[str, tuple[Decimal | None, int, int]]:
    return {
        event.user_id: (
            event.amount,
            (event.metadata or {})["messages"],
            (event.metadata or {})["overage_messages"],
        )
        for event in BillingEvent.objects.filter(event_type="usage_period_closed")
    }


@pytest.mark.usefixtures("september_usage")
def test_close_bills_overage_per_user_on_a_known_data_set(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = ""
    out = io.StringIO()

    call_command("close_billing_period", "--month", "2026-09", stdout=out, stderr=io.StringIO())

    assert closed_rows() == {
        "user_a": (Decimal("11.00"), 55_500, 5_500),
        "user_b": (Decimal("0.00"), 900, 0),
        "user_c": (Decimal("0.25"), 1_000_250, 250),
        "user_d": (Decimal("0.00"), 10_000, 0),
        "user_e": (Decimal("0.00"), 5, 0),
    }
    assert "overage amount      11.25" in out.getvalue()
    assert (BillingEvent.objects.get(user_id="user_a").metadata or {})["period"] == "2026-09"


@pytest.mark.usefixtures("september_usage")
def test_close_twice_changes_nothing(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = ""
    call_command("close_billing_period", "--month", "2026-09", stdout=io.StringIO(),
                 stderr=io.StringIO())  # fmt: skip
    first = closed_rows()

    again = close_period_record(dt.date(2026, 9, 1))

    assert again == 0
    assert closed_rows() == first
    assert BillingEvent.objects.count() == 5


@pytest.mark.usefixtures("september_usage")
def test_dry_run_prints_the_charges_and_writes_nothing() -> None:
    out = io.StringIO()

    call_command("close_billing_period", "--month", "2026-09", "--dry-run", stdout=out)

    assert not BillingEvent.objects.exists()
    assert "user_a" in out.getvalue()
    assert "5 users, 2 with overage, total 11.25." in out.getvalue()


def test_close_bills_the_messages_of_an_agent_deleted_before_the_close() -> None:
    """Given a pro user's agent with 55,500 September messages, deleted before the close,
    when September closes, then its messages are billed (5,500 over x 0.002 = 11.00): they
    were counted in the user's month, which outlives the agent and its daily rows."""
    UserSubscription.objects.create(user_id="user_gone", plan_id="pro")
    agent, _ = agent_create(owner_id="user_gone", name="G", handle="gone_soon", agent_type="work")
    messages_ingested(agent, day=dt.date(2026, 9, 14), messages=55_500)
    agent_delete(agent=agent)

    close_period_record(dt.date(2026, 9, 1))

    row = BillingEvent.objects.get(user_id="user_gone", event_type="usage_period_closed")
    assert (row.amount, row.metadata) == (
        Decimal("11.00"),
        {"period": "2026-09", "plan_id": "pro", "agents": 0, "messages": 55_500,
         "included_messages": 50_000, "overage_messages": 5_500},
    )  # fmt: skip


def test_close_records_an_account_whose_agents_made_only_api_calls_with_no_messages() -> None:
    """Given an agent with September usage rows but no messages (API calls only), when
    September closes, then its owner gets a row of 0 messages and 1 agent, billed nothing."""
    agent, _ = agent_create(owner_id="user_api", name="A", handle="api_only", agent_type="work")
    usage_ingest(agent_id=agent.pk, events=[
        UsageEvent("calls", dt.datetime(2026, 9, 3, 12, tzinfo=dt.UTC), api_calls=40)
    ])  # fmt: skip

    close_period_record(dt.date(2026, 9, 1))

    row = BillingEvent.objects.get(user_id="user_api", event_type="usage_period_closed")
    metadata = row.metadata or {}
    assert (row.amount, metadata["messages"], metadata["agents"]) == (Decimal("0.00"), 0, 1)


def test_close_refuses_a_month_that_has_not_ended() -> None:
    month = timezone.now().strftime("%Y-%m")

    with pytest.raises(CommandError, match="has not ended"):
        call_command("close_billing_period", "--month", month)


def test_close_refuses_a_malformed_month() -> None:
    with pytest.raises(CommandError):
        call_command("close_billing_period", "--month", "2026-13")
