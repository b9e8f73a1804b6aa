"""Reads about plans and subscriptions that other apps rely on."""

import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import QuerySet

from billing.models import (
    UNLIMITED,
    BillingEvent,
    PlanId,
    SubscriptionPlan,
    UserSubscription,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentLimits:
    """How many non-archived agents a user may have; -1 means unlimited."""

    personal: int
    work: int
    total: int

    def for_type(self, agent_type: str) -> int:
        return self.personal if agent_type == "personal" else self.work

    @staticmethod
    def allows(limit: int, count: int) -> bool:
        return limit == UNLIMITED or count <= limit


def plan_total_limit(plan: SubscriptionPlan) -> int:
    """The plan's total: the sum of its per-type limits, unlimited if either is."""
    if UNLIMITED in (plan.max_personal_agents, plan.max_work_agents):
        return UNLIMITED
    return plan.max_personal_agents + plan.max_work_agents


def plan_get(plan_id: str) -> SubscriptionPlan:
    return SubscriptionPlan.objects.get(pk=plan_id)


def plan_for_user(user_id: str) -> SubscriptionPlan:
    """The user's plan: their subscription's, or free without one (`rules.plan_of_user_sql`)."""
    plan_id = (
        UserSubscription.objects.filter(user_id=user_id).values_list("plan_id", flat=True).first()
        or PlanId.FREE
    )
    return plan_get(plan_id)


def agent_limits_for(subscription: UserSubscription | None) -> AgentLimits:
    """Effective limits: the subscription row's numbers, falling back to its plan's.

    A user without a subscription row is on the free plan.
    """
    plan = plan_get(subscription.plan_id if subscription else PlanId.FREE)
    plan_limits = AgentLimits(
        personal=plan.max_personal_agents,
        work=plan.max_work_agents,
        total=plan_total_limit(plan),
    )
    if subscription is None:
        return plan_limits

    def pick(own: int | None, fallback: int) -> int:
        return fallback if own is None else own

    return AgentLimits(
        personal=pick(subscription.max_personal_agents, plan_limits.personal),
        work=pick(subscription.max_work_agents, plan_limits.work),
        total=pick(subscription.max_total_agents, plan_limits.total),
    )


@dataclass(frozen=True)
class RequestRates:
    """Requests per minute a user's plan allows, for the owner and for each of their apps."""

    owner_per_minute: int
    app_per_minute: int


def _request_rates_from_database(user_id: str) -> RequestRates:
    plan = plan_for_user(user_id)
    return RequestRates(
        owner_per_minute=plan.owner_requests_per_minute, app_per_minute=plan.app_requests_per_minute
    )


RATES_CACHE_SECONDS = 60


def request_rates_for_user(user_id: str) -> RequestRates:
    """The user's rate limits, cached for a minute; read from the database if the cache fails."""
    key = f"billing:rates:{user_id}"
    try:
        cached = cache.get(key)
    except Exception:
        logger.warning("Cache unavailable; reading rate limits from the database", exc_info=True)
        return _request_rates_from_database(user_id)
    if cached is not None:
        return RequestRates(*cached)
    rates = _request_rates_from_database(user_id)
    try:
        cache.set(key, (rates.owner_per_minute, rates.app_per_minute), RATES_CACHE_SECONDS)
    except Exception:
        logger.warning("Cache unavailable; rate limits not cached", exc_info=True)
    return rates


def billing_events_for_user(user_id: str) -> QuerySet[BillingEvent]:
    return BillingEvent.objects.filter(user_id=user_id).order_by("-created_at", "-id")
