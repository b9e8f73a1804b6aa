"""Reads about integrations, scoped to what the caller may see."""

from typing import Any

from django.db.models import QuerySet

from agents.selectors import reachable_by_owner
from core.principals import owner_of
from core.staff_permissions import staff_may
from integrations.models import AgentIntegration


def integration_queryset_for(user: Any) -> QuerySet[AgentIntegration]:
    """Integrations of the agents an owner may see (their own and their teams'), all of them
    for staff, none for anyone else."""
    integrations = AgentIntegration.objects.all()
    if staff_may(user, "integration", "view"):
        return integrations
    owner = owner_of(user)
    if owner is None:
        return integrations.none()
    return integrations.filter(reachable_by_owner(owner.id, via="agent__"))


def integrations_of_agent(agent_id: Any) -> QuerySet[AgentIntegration]:
    """An agent's integrations, by provider (its unique (agent, provider) index)."""
    return AgentIntegration.objects.filter(agent_id=agent_id).order_by("provider")
