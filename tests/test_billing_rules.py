"""billing.rules: each rule's Python and SQL agree, and the usage summary projects what the
monthly close bills."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from billing.models import (
    BillingEvent,
    BillingEventType,
    SubscriptionPlan,
    SubscriptionStatus,
    UserSubscription,
)
from billing.rules import (
    PAYMENT_OVERDUE_SQL,
    overage_cost,
    overage_cost_sql,
    overage_messages,
    overage_messages_sql,
    payment_overdue,
    plan_of_user_sql,
)
from billing.selectors import plan_for_user
from invoicing.closing import close_period_record
from tests.factories import AgentFactory, SubscriptionFactory
from usage.selectors import usage_month_summary
from usage.services import UsageEvent, usage_ingest

pytestmark = pytest.mark.django_db


def one_row(sql: str, parameters: dict[str, Any]) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return tuple(cursor.fetchone())


@pytest.mark.parametrize(
    ("hard_cap", "included", "price", "messages"),
    [
        (True, 100, "0.002", 150),  # hard cap: refused past the quota, never billed
        (False, None, "0.002", 10_000_000),  # no quota
        (False, 0, "0.002", 0),
        (False, 0, "0.002", 7),
        (False, 100, "0.002", 99),
        (False, 100, "0.002", 100),
        (False, 100, "0.002", 101),
        (False, 1_000_000, "0.001", 1_000_005),  # half a cent rounds up
        (False, 100, "0.000333", 103),  # 0.000999 rounds to 0.00
        # -1 means unlimited for agent limits; for messages NULL does, and a negative limit
        # is refused (tests/test_admin_roles.py).
    ],
)
def test_overage_in_python_and_in_sql_agree(
    hard_cap: bool, included: int | None, price: str, messages: int
) -> None:
    plan = SubscriptionPlan.objects.create(
        id="case", name="Case", max_personal_agents=1, max_work_agents=1,
        max_messages_per_month=included, messages_hard_cap=hard_cap,
        overage_price_per_message=Decimal(price),
    )  # fmt: skip
    plan.refresh_from_db()
    overage = overage_messages_sql("%(messages)s::bigint")

    in_sql = one_row(
        f"SELECT {overage}, {overage_cost_sql(overage)} FROM subscription_plans p "
        "WHERE p.id = %(plan)s",
        {"plan": plan.id, "messages": messages},
    )

    in_python = overage_messages(plan, messages)
    assert in_sql == (in_python, overage_cost(plan, in_python))


@pytest.mark.parametrize(
    ("status", "past_due_for", "grace_days", "overdue"),
    [
        (None, None, 7, False),  # no subscription row
        (SubscriptionStatus.ACTIVE, dt.timedelta(days=30), 7, False),
        (SubscriptionStatus.PAST_DUE, None, 7, False),
        (SubscriptionStatus.PAST_DUE, dt.timedelta(days=6), 7, False),
        (SubscriptionStatus.PAST_DUE, dt.timedelta(days=7), 7, False),  # the grace's last instant
        (SubscriptionStatus.PAST_DUE, dt.timedelta(days=7, seconds=1), 7, True),
        (SubscriptionStatus.PAST_DUE, dt.timedelta(seconds=1), 0, True),
    ],
)
def test_payment_overdue_in_python_and_in_sql_agree(
    status: str | None, past_due_for: dt.timedelta | None, grace_days: int, overdue: bool
) -> None:
    (now,) = one_row("SELECT now()", {})  # one transaction: the statement below sees it too
    SubscriptionPlan.objects.filter(pk="pro").update(past_due_grace_days=grace_days)
    if status is not None:
        SubscriptionFactory.create(
            user_id="user_1", plan_id="pro", status=status,
            past_due_since=now - past_due_for if past_due_for else None,
        )  # fmt: skip

    (in_sql,) = one_row(
        f"SELECT {PAYMENT_OVERDUE_SQL} FROM (SELECT %(user)s AS user_id) u "
        + plan_of_user_sql("u.user_id"),
        {"user": "user_1"},
    )

    subscription = UserSubscription.objects.filter(user_id="user_1").first()
    in_python = payment_overdue(subscription, plan_for_user("user_1"), now=now)
    assert in_sql is in_python is overdue


def test_usage_summary_projects_the_overage_the_close_bills_for_a_finished_month() -> None:
    # February 2024 is over: the summary's projection is the month's count.
    month = dt.date(2024, 2, 1)
    plans = {"user_pro": "pro", "user_under": "pro", "user_ent": "enterprise", "user_cap": "free"}
    for user_id, plan_id in plans.items():
        SubscriptionFactory.create(user_id=user_id, plan_id=plan_id)
    messages_on = {  # per user: per agent, (day of February, messages)
        "user_pro": [[(1, 30_000), (29, 20_000)], [(15, 5_001)]],
        "user_under": [[(10, 100)]],
        "user_ent": [[(2, 600_000)], [(3, 400_005)]],
        "user_cap": [[(5, 900)]],
        "user_free": [[(28, 1_000)]],  # no subscription row: free
    }
    for user_id, agents in messages_on.items():
        for days in agents:
            agent = AgentFactory.create(owner_id=user_id)
            usage_ingest(agent_id=agent.pk, events=[
                UsageEvent(event_id=f"{user_id}-{day}", messages=count,
                           occurred_at=dt.datetime(2024, 2, day, 12, tzinfo=dt.UTC))
                for day, count in days
            ])  # fmt: skip

    close_period_record(month)

    billed = {
        row.user_id: ((row.metadata or {})["overage_messages"], row.amount)
        for row in BillingEvent.objects.filter(event_type=BillingEventType.USAGE_PERIOD_CLOSED)
    }
    projected = {}
    for user_id in messages_on:
        summary = usage_month_summary(user_id, month)
        assert summary.projected_messages == summary.messages_used
        projected[user_id] = (summary.projected_overage_messages, summary.projected_overage_cost)
    assert projected == billed
    assert billed["user_pro"] == (5_001, Decimal("10.00"))
    assert billed["user_ent"] == (5, Decimal("0.01"))  # 0.005 rounds up in both
