"""Reads about agents: scoped querysets for the API and admin, counts for the limits."""

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower

from agents.models import A1Agent, AgentStatus
from core.principals import app_of, owner_of
from core.staff_permissions import staff_may


def with_handle(agents: QuerySet[A1Agent], handle: str) -> QuerySet[A1Agent]:
    """Filter by handle without regard to case, through the `lower(handle)` unique index.

    (`handle__iexact` would compare UPPER() values, which that index cannot serve.)
    """
    return agents.alias(handle_lower=Lower("handle")).filter(handle_lower=handle.lower())


def agent_queryset_for(user: Any) -> QuerySet[A1Agent]:
    """Agents the caller may see: an owner's own, or all of them for staff; none otherwise."""
    agents = A1Agent.objects.select_related("app").order_by("-created_at", "-id")
    if staff_may(user, "agent", "view"):
        return agents
    owner = owner_of(user)
    if owner is None:
        return agents.none()
    return agents.filter(owner_id=owner.id)


def agent_is_visible_to(user: Any, agent_id: Any) -> bool:
    """Whether the caller may see the agent: an app its own agent, an owner theirs, staff all.

    Every route that names an agent answers 404 when this is false: another owner's agent is
    as unknown as one that does not exist.
    """
    app = app_of(user)
    if app is not None:
        return bool(agent_id == app.agent_id)
    return agent_queryset_for(user).filter(pk=agent_id).exists()


def agent_public_by_handle(handle: str) -> A1Agent | None:
    """The active agent with this handle, matched without regard to case."""
    return (
        with_handle(A1Agent.objects.filter(status=AgentStatus.ACTIVE), handle)
        .only(
            "id", "name", "handle", "description", "avatar_url", "agent_type",
            "base_website", "custom_website", "created_at",
        )
        .first()
    )  # fmt: skip


def handle_is_taken(handle: str, *, excluding_agent_id: Any = None) -> bool:
    agents = with_handle(A1Agent.objects.all(), handle)
    if excluding_agent_id is not None:
        agents = agents.exclude(pk=excluding_agent_id)
    return agents.exists()


def agent_owner_id(agent_id: Any) -> str | None:
    """The agent's owner, or None if there is no such agent."""
    owner_id = A1Agent.objects.filter(pk=agent_id).values_list("owner_id", flat=True).first()
    return str(owner_id) if owner_id is not None else None


def agent_counts_for_owner(owner_id: str, *, excluding_agent_id: Any = None) -> dict[str, int]:
    """Non-archived agents of an owner per type, plus `total`, in one query."""
    agents = A1Agent.objects.filter(owner_id=owner_id).exclude(status=AgentStatus.ARCHIVED)
    if excluding_agent_id is not None:
        agents = agents.exclude(pk=excluding_agent_id)
    counts = agents.aggregate(
        personal=Count("id", filter=Q(agent_type="personal")),
        work=Count("id", filter=Q(agent_type="work")),
        total=Count("id"),
    )
    return {key: int(value or 0) for key, value in counts.items()}
