"""The owner's view of their subscription: plan, limits, grace period and this month's usage."""

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from billing.models import (
    PlanId,
    SubscriptionPlan,
    SubscriptionStatus,
    UserSubscription,
)
from billing.rules import grace_ends_at
from billing.selectors import (
    AgentLimits,
    agent_limits_for,
    plan_get,
)
from core.months import current_month, format_month
from usage.selectors import month_messages_used

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubscriptionOverview:
    plan: SubscriptionPlan
    status: str
    current_period_start: dt.datetime | None
    current_period_end: dt.datetime | None
    cancelled_at: dt.datetime | None
    ends_at: dt.datetime | None
    past_due_since: dt.datetime | None
    grace_ends_at: dt.datetime | None
    limits: AgentLimits
    agents: dict[str, int]
    over_limit: bool
    over_limits: list[str]
    usage: dict[str, Any]
    has_billing_account: bool


def subscription_overview(user_id: str, agent_counts: dict[str, int]) -> SubscriptionOverview:
    """Everything an owner sees about their subscription (without creating a row)."""
    subscription = UserSubscription.objects.filter(user_id=user_id).first()
    plan = plan_get(subscription.plan_id if subscription else PlanId.FREE)
    limits = agent_limits_for(subscription)
    over = limits.exceeded(agent_counts)
    past_due_since = subscription.past_due_since if subscription else None
    month = current_month()
    return SubscriptionOverview(
        plan=plan,
        status=subscription.status if subscription else SubscriptionStatus.ACTIVE,
        current_period_start=subscription.current_period_start if subscription else None,
        current_period_end=subscription.current_period_end if subscription else None,
        cancelled_at=subscription.cancelled_at if subscription else None,
        ends_at=subscription.ends_at if subscription else None,
        past_due_since=past_due_since,
        grace_ends_at=grace_ends_at(plan, past_due_since),
        limits=limits,
        agents=agent_counts,
        over_limit=bool(over),
        over_limits=over,
        usage={
            "month": format_month(month),
            "messages_used": month_messages_used(user_id, month),
            "included_messages": plan.max_messages_per_month,
            "hard_cap": plan.messages_hard_cap,
        },
        has_billing_account=bool(subscription and subscription.stripe_customer_id),
    )
