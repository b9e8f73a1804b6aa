"""Reads about conversations and messages, scoped to what the caller may see."""

import uuid
from dataclasses import replace
from typing import Any

from django.db import connection
from django.db.models import DateTimeField, OuterRef, QuerySet, Subquery

from agents.selectors import REACHABLE_BY_OWNER_SQL, reachable_by_owner
from conversations.models import AgentConversation, Message
from core.principals import app_of, owner_of
from core.sql_rows import SqlRows, model_columns
from core.staff_permissions import staff_may


def conversation_queryset_for(user: Any) -> QuerySet[AgentConversation]:
    """Conversations the caller may see: of the agents an owner may see (their own and their
    teams'), of an app's own agent, or all of them for staff; none for anyone else."""
    conversations = AgentConversation.objects.all()
    if staff_may(user, "conversation", "view"):
        return conversations
    owner = owner_of(user)
    if owner is not None:
        return conversations.filter(reachable_by_owner(owner.id, via="agent__"))
    app = app_of(user)
    if app is not None:
        return conversations.filter(agent_id=app.agent_id)
    return conversations.none()


# The owner's and the app's case of conversation_queryset_for in plain SQL, on the
# conversation aliased `c` and its agent `a`, for the messages page, which asks on every
# read: the ORM's compile of the same query costs more than it.
OWNER_SEES_CONVERSATION = REACHABLE_BY_OWNER_SQL
APP_SEES_CONVERSATION = "c.agent_id = %(agent)s"
CONVERSATION_AND_AGENT = "agent_conversations c JOIN a1_agents a ON a.id = c.agent_id"


def _sees_conversation(user: Any) -> tuple[str, dict[str, Any]] | None:
    """conversation_queryset_for(user) as a condition on `c` and `a` with its parameters,
    for an owner or an app; None for anyone else (staff, nobody)."""
    owner, app = owner_of(user), app_of(user)
    if owner is not None:
        return OWNER_SEES_CONVERSATION, {"user": owner.id}
    if app is not None:
        return APP_SEES_CONVERSATION, {"agent": app.agent_id}
    return None


def conversation_is_visible_to(user: Any, conversation_id: uuid.UUID) -> bool:
    """Whether the conversation is one of conversation_queryset_for(user)."""
    sees = _sees_conversation(user)
    if sees is None:
        return conversation_queryset_for(user).filter(pk=conversation_id).exists()
    condition, parameters = sees
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {CONVERSATION_AND_AGENT} "  # noqa: S608 - constants
            f"WHERE c.id = %(conversation)s AND {condition}",
            {**parameters, "conversation": conversation_id},
        )
        return cursor.fetchone() is not None


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


# A page of messages' columns, named as `.values()` names them, read by one SELECT
# (core.sql_rows): `conversations.api.serializers.message_list_item` writes each row.
MESSAGE_LIST_ROWS = model_columns(
    Message, "m",
    "id", "conversation_id", "agent_id", "role", "content", "metadata", "client_message_id",
    "created_at",
)  # fmt: skip


def message_rows_for(user: Any, conversation_id: uuid.UUID) -> SqlRows:
    """The conversation's messages as the messages page reads them (MESSAGE_LIST_ROWS),
    if the caller may see the conversation, else none: the page and the visibility check
    in one statement. An empty page does not say which: ask conversation_is_visible_to.
    The paginator orders them (created_at, id), which idx_messages_conversation_time serves.
    """
    rows = SqlRows(
        MESSAGE_LIST_ROWS, "messages m", where="m.conversation_id = %(conversation)s",
        parameters={"conversation": conversation_id}, model=Message,
    )  # fmt: skip
    sees = _sees_conversation(user)
    if sees is not None:
        condition, parameters = sees
        return replace(
            rows, source=f"messages m JOIN {CONVERSATION_AND_AGENT} ON c.id = m.conversation_id",
            where=f"m.conversation_id = %(conversation)s AND {condition}",
            parameters={**rows.parameters, **parameters},
        )  # fmt: skip
    if conversation_queryset_for(user).filter(pk=conversation_id).exists():
        return rows  # staff: one query more, off the hot path
    return replace(rows, where="FALSE")
