"""The pieces the support console is built from: the limits check, the plan and agent-count
columns its lists show, and the read-only admin's guard on the staff permission map."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from agents.models import A1Agent
from agents.selectors import agent_count_column
from billing.selectors import AgentLimits, on_plan, user_plan_id_column
from console.admin_base import ReadOnlyAdmin
from tests.factories import AgentFactory, SubscriptionFactory


def test_exceeded_names_each_scope_over_its_limit_and_unlimited_is_never_exceeded() -> None:
    limits = AgentLimits(personal=1, work=-1, total=2)

    assert limits.exceeded({"personal": 1, "work": 50, "total": 2}) == []
    assert limits.exceeded({"personal": 2, "work": 50, "total": 3}) == ["personal", "total"]


@pytest.mark.django_db
def test_an_owner_without_a_subscription_row_is_on_free_in_columns_and_filters() -> None:
    AgentFactory.create(owner_id="payer", handle="paid_bot")
    SubscriptionFactory.create(user_id="payer", plan_id="pro")
    AgentFactory.create(owner_id="nobody", handle="free_bot")
    AgentFactory.create(owner_id="nobody", handle="old_bot", status="archived")
    agents = A1Agent.objects.annotate(
        plan=user_plan_id_column("owner_id"), owner_agents=agent_count_column("owner_id")
    )

    shown = {agent.handle: (agent.plan, agent.owner_agents) for agent in agents}
    on_free = agents.filter(on_plan("free", user_id_field="owner_id"))
    on_pro = agents.filter(on_plan("pro", user_id_field="owner_id"))

    assert shown == {"paid_bot": ("pro", 1), "free_bot": ("free", 1), "old_bot": ("free", 1)}
    assert sorted(agent.handle for agent in on_free) == ["free_bot", "old_bot"]
    assert [agent.handle for agent in on_pro] == ["paid_bot"]


def test_a_read_only_admin_refuses_a_resource_staff_may_write() -> None:
    with pytest.raises(ImproperlyConfigured, match="'agent' add, change, delete"):

        class AgentsReadOnly(ReadOnlyAdmin):
            staff_resource = "agent"
