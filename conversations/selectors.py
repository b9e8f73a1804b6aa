"""Reads about conversations and messages, scoped to what the caller may see."""

import uuid
from typing import Any

from django.db.models import DateTimeField, OuterRef, QuerySet, Subquery

from conversations.models import AgentConversation, Message
from core.principals import app_of, owner_of
from core.staff_permissions import staff_may


def conversation_queryset_for(user: Any) -> QuerySet[AgentConversation]:
    """Conversations the caller may see: of an owner's agents, of an app's own agent, or all
    of them for staff; none for anyone else."""
    conversations = AgentConversation.objects.all()
    if staff_may(user, "conversation", "view"):
        return conversations
    owner = owner_of(user)
    if owner is not None:
        return conversations.filter(agent__owner_id=owner.id)
    app = app_of(user)
    if app is not None:
        return conversations.filter(agent_id=app.agent_id)
    return conversations.none()


def conversations_of_agent(agent_id: uuid.UUID) -> QuerySet[AgentConversation]:
    """An agent's conversations, most recent activity first.

    Served by idx_agent_conversations_agent_activity. The caller has already checked that the
    agent is one it may see.
    """
    return AgentConversation.objects.filter(agent_id=agent_id).order_by("-last_message_at", "-id")


def last_message_at_column(agent_id_field: str) -> Subquery:
    """When the agent named by the outer row's `agent_id_field` last had a message."""
    latest = AgentConversation.objects.filter(agent_id=OuterRef(agent_id_field))
    return Subquery(
        latest.order_by("-last_message_at").values("last_message_at")[:1],
        output_field=DateTimeField(),
    )


def messages_of_conversation(conversation_id: uuid.UUID) -> QuerySet[Message]:
    """A conversation's messages, oldest first (served by idx_messages_conversation_time)."""
    return Message.objects.filter(conversation_id=conversation_id).order_by("created_at", "id")
