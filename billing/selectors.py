"""Reads about plans and subscriptions that other apps rely on."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import OuterRef, Q, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Coalesce

from billing.models import (
    UNLIMITED,
    BillingEvent,
    PlanId,
    SubscriptionPlan,
    UserSubscription,
)
from core.local_cache import LocalCache

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

    def exceeded(self, counts: Mapping[str, int]) -> list[str]:
        """The scopes (`personal`, `work`, `total`) whose agent count is over its limit."""
        scopes = (("personal", self.personal), ("work", self.work), ("total", self.total))
        return [scope for scope, limit in scopes if not self.allows(limit, counts[scope])]


def plan_total_limit(plan: SubscriptionPlan) -> int:
    """The plan's total: the sum of its per-type limits, unlimited if either is."""
    if UNLIMITED in (plan.max_personal_agents, plan.max_work_agents):
        return UNLIMITED
    return plan.max_personal_agents + plan.max_work_agents


def plan_get(plan_id: str) -> SubscriptionPlan:
    return SubscriptionPlan.objects.get(pk=plan_id)


def plan_for_user(user_id: str) -> SubscriptionPlan:
    """The user's plan: their subscription's, or free without one (`rules.plan_of_user_sql`)."""
    return plan_get(plan_id_of(subscription_of_user(user_id)))


def agent_limits_for(subscription: UserSubscription | None) -> AgentLimits:
    """Effective limits: the subscription row's numbers, falling back to its plan's.

    A user without a subscription row is on the free plan.
    """
    plan = plan_get(plan_id_of(subscription))
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
# Each process keeps the rates of the users it served this long, so the throttle reads
# nothing but its counter: a plan change reaches every host within this plus the minute above.
RATES_PROCESS_SECONDS = 10
_rates_in_process: LocalCache[str, RequestRates] = LocalCache(max_entries=10_000)


def request_rates_for_user(user_id: str) -> RequestRates:
    """The user's rate limits, from the process's memory for RATES_PROCESS_SECONDS, else from
    the cache (a minute), else from the database (also when the cache fails)."""
    rates = _rates_in_process.get(user_id)
    if rates is None:
        rates = _request_rates_from_shared_cache(user_id)
        _rates_in_process.set_for(user_id, rates, RATES_PROCESS_SECONDS)
    return rates


def _request_rates_from_shared_cache(user_id: str) -> RequestRates:
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


def plan_id_of(subscription: UserSubscription | None) -> str:
    """The subscription's plan; a user without a subscription row is on the free plan."""
    return subscription.plan_id if subscription else PlanId.FREE


def subscription_of_user(user_id: str) -> UserSubscription | None:
    return UserSubscription.objects.filter(user_id=user_id).first()


# Columns and filters for lists of rows that name a user (the support console's lists): one
# subquery per page, through the unique index on user_subscriptions.user_id.


def user_plan_id_column(user_id_field: str) -> Coalesce:
    """The plan of the user named by the outer row's `user_id_field` (free without a row)."""
    plan_ids = UserSubscription.objects.filter(user_id=OuterRef(user_id_field)).values("plan_id")
    return Coalesce(Subquery(plan_ids[:1]), Value(PlanId.FREE), output_field=TextField())


def user_subscription_status_column(user_id_field: str) -> Subquery:
    """The status of that user's subscription row; NULL without one."""
    statuses = UserSubscription.objects.filter(user_id=OuterRef(user_id_field)).values("status")
    return Subquery(statuses[:1])


def on_plan(plan_id: str, *, user_id_field: str) -> Q:
    """Rows whose user (`user_id_field`) is on the plan; a user without a row is on free."""
    if plan_id == PlanId.FREE:
        paying = UserSubscription.objects.exclude(plan_id=PlanId.FREE).values("user_id")
        return ~Q(**{f"{user_id_field}__in": paying})
    on_it = UserSubscription.objects.filter(plan_id=plan_id).values("user_id")
    return Q(**{f"{user_id_field}__in": on_it})
