"""Reads about plans and subscriptions that other apps rely on."""

from dataclasses import dataclass

from billing.models import UNLIMITED, PlanId, SubscriptionPlan, UserSubscription


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
