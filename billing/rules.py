"""The billing rules, each written once: in Python for the reads (the usage summary, the
subscription overview, the console), and beside it as the SQL that the set-based statements
embed (the monthly close, usage ingestion). tests/test_billing_rules.py runs both on the
same cases.

In the SQL fragments `s` is the user's `user_subscriptions` row (NULLs when they have none)
and `p` their `subscription_plans` row, as `plan_of_user_sql` joins them.
"""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from billing.models import PlanId, SubscriptionPlan, SubscriptionStatus, UserSubscription

CENT = Decimal("0.01")


def plan_of_user_sql(user_id: str) -> str:
    """JOIN the subscription `s` and the plan `p` of the user `user_id` (an SQL expression):
    a user without a subscription row is on the free plan, as in `selectors.plan_for_user`."""
    return (
        f"LEFT JOIN user_subscriptions s ON s.user_id = {user_id}\n"
        f"JOIN subscription_plans p ON p.id = COALESCE(s.plan_id, '{PlanId.FREE}')"
    )


# --- overage: messages past the plan's included amount, billed by the monthly close ---------


def overage_messages(plan: SubscriptionPlan, messages: int) -> int:
    """The month's messages past the plan's included amount.

    None on a hard-capped plan (past its quota messages are refused, not billed) or on a
    plan without a quota (`max_messages_per_month` NULL).
    """
    included = plan.max_messages_per_month
    if plan.messages_hard_cap or included is None:
        return 0
    return max(messages - included, 0)


def overage_messages_sql(messages: str) -> str:
    """`overage_messages` for the plan `p` and `messages` (an SQL expression)."""
    return (
        "CASE WHEN p.messages_hard_cap OR p.max_messages_per_month IS NULL THEN 0\n"
        f"     ELSE GREATEST({messages} - p.max_messages_per_month, 0) END"
    )


def overage_cost(plan: SubscriptionPlan, overage: int) -> Decimal:
    """The price of `overage` messages, rounded to the cent, half up (as PostgreSQL rounds)."""
    return (Decimal(overage) * plan.overage_price_per_message).quantize(CENT, ROUND_HALF_UP)


def overage_cost_sql(overage: str) -> str:
    """`overage_cost` for the plan `p` and `overage` messages (an SQL expression)."""
    return f"ROUND({overage} * p.overage_price_per_message, 2)"


# --- the past-due grace period ----------------------------------------------------------------


def grace_ends_at(plan: SubscriptionPlan, past_due_since: dt.datetime | None) -> dt.datetime | None:
    """When a past-due subscription stops working: the plan's grace days after it fell due."""
    if past_due_since is None:
        return None
    return past_due_since + dt.timedelta(days=plan.past_due_grace_days)


def payment_overdue(
    subscription: UserSubscription | None, plan: SubscriptionPlan, *, now: dt.datetime
) -> bool:
    """Whether the subscription is past due beyond its grace: its agents' apps are refused."""
    if subscription is None or subscription.status != SubscriptionStatus.PAST_DUE:
        return False
    ends = grace_ends_at(plan, subscription.past_due_since)
    return ends is not None and ends < now


# `payment_overdue` at the statement's now(), for the subscription `s` and the plan `p`.
PAYMENT_OVERDUE_SQL = f"""COALESCE(
    s.status = '{SubscriptionStatus.PAST_DUE}'
    AND s.past_due_since < now() - make_interval(days => p.past_due_grace_days),
    false)"""
