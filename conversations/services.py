"""Writes to conversations and messages.

Idempotency comes from unique indexes, not from checks in Python:

- A conversation with a `thread_id` is found or created by (agent, channel, thread_id):
  `INSERT … ON CONFLICT DO NOTHING`, then a read. Two racing retries of the same webhook
  wait for each other on the partial unique index and end with one row.
- A message with a `client_message_id` is stored once per conversation: a retry gets the
  stored message back, and is not counted again.

A new message is one transaction, locks taken in one order (agent, then the owner's usage
counters, then the conversation): usage is counted first (this share-locks the agent, so a
pause is ordered before or after, and refuses paused agents and exhausted quotas), then the
conversation's `last_message_at` moves forward under its row lock, then the message is
inserted with that same timestamp, so messages of a conversation are stored in time order.
"""

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from agents.errors import AgentNotActive
from agents.locks import agent_hold_status
from agents.models import AgentStatus
from agents.selectors import agent_owner_subquery
from conversations import rollups
from conversations.errors import ConversationArchived, ConversationGone
from conversations.models import AgentConversation, ConversationStatus, Message
from notifications.events import event_emit
from usage.errors import AgentGone, QuotaExceeded
from usage.services import usage_record_message

# Fields a conversation_update may change; the rest belong to the conversation's lifecycle.
UPDATABLE_FIELDS = frozenset({"metadata", "external_user_id"})


def _hold_active_agent(agent_id: uuid.UUID) -> None:
    """Share-lock the agent until commit (a pause waits for us) and refuse it unless active."""
    agent = agent_hold_status(agent_id)
    if agent is None:
        raise AgentGone()
    if agent.status != AgentStatus.ACTIVE:
        raise AgentNotActive(
            f"This agent is {agent.status or 'not active'}; it opens no conversations.",
            status=agent.status,
        )


@transaction.atomic
def conversation_open(
    *,
    agent_id: uuid.UUID,
    channel: str,
    external_user_id: str | None = None,
    thread_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[AgentConversation, bool]:
    """Open a conversation of an active agent; with a thread_id, find the thread's instead.

    Return the conversation and whether it was created. A conversation found by its thread
    is returned as stored: the request's other fields do not change it.
    """
    _hold_active_agent(agent_id)
    while True:
        # The row comes back whole (RETURNING *, through raw() for the fields' decoding), so
        # a new conversation costs no second read.
        inserted = list(
            AgentConversation.objects.raw(
                """
                INSERT INTO agent_conversations
                    (agent_id, channel, external_user_id, thread_id, metadata)
                VALUES (%s, %s, %s, %s, %s::jsonb)
                ON CONFLICT (agent_id, channel, thread_id) WHERE thread_id IS NOT NULL
                DO NOTHING
                RETURNING *
                """,
                [agent_id, channel, external_user_id, thread_id, json.dumps(metadata or {})],
            )
        )
        if inserted:
            conversation = inserted[0]
            rollups.conversation_started_count(
                agent_id=agent_id, channel=channel, started_at=conversation.started_at
            )
            _emit(
                conversation.agent_id, "conversation.created", conversation_event_data(conversation)
            )
            return conversation, True
        # The thread's conversation exists (a statement of READ COMMITTED sees it once the
        # INSERT found it committed). Loop only if it was deleted in between.
        existing = AgentConversation.objects.filter(
            agent_id=agent_id, channel=channel, thread_id=thread_id
        ).first()
        if existing is not None:
            return existing, False


@transaction.atomic
def conversation_update(*, conversation_id: uuid.UUID, **changes: Any) -> AgentConversation:
    """Change a conversation's metadata (replaced as a whole) or external_user_id."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"conversation_update() got unexpected fields: {sorted(unknown)}")
    if changes and not AgentConversation.objects.filter(pk=conversation_id).update(**changes):
        raise ConversationGone()
    return AgentConversation.objects.get(pk=conversation_id)


@transaction.atomic
def conversation_archive(*, conversation_id: uuid.UUID) -> AgentConversation:
    """Archive the conversation: it takes no more messages. Archiving twice changes nothing."""
    AgentConversation.objects.filter(pk=conversation_id).exclude(
        status=ConversationStatus.ARCHIVED
    ).update(status=ConversationStatus.ARCHIVED, ended_at=Now())
    conversation = AgentConversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        raise ConversationGone()
    return conversation


def _emit(agent_id: uuid.UUID, event_type: str, data: dict[str, Any]) -> None:
    """The agent's owner's webhooks hear of it in this transaction (an outbox row); one query
    when nobody listens."""
    event_emit(owner_id=agent_owner_subquery(agent_id), event_type=event_type, data=data)


def conversation_event_data(conversation: AgentConversation) -> dict[str, Any]:
    """What a conversation.created webhook says (no metadata: it may hold anything)."""
    return {
        "id": conversation.id,
        "agent_id": conversation.agent_id,
        "channel": conversation.channel,
        "external_user_id": conversation.external_user_id,
        "thread_id": conversation.thread_id,
        "status": conversation.status,
        "started_at": conversation.started_at,
    }


def message_event_data(message: Message) -> dict[str, Any]:
    """What a message.created webhook says (its shape: notifications/api/event_schemas.py;
    ids named `agent_id`/`conversation_id` as in every other event body)."""
    return {
        "id": message.id,
        "agent_id": message.agent_id,
        "conversation_id": message.conversation_id,
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "created_at": message.created_at,
    }


class _AlreadyStored(Exception):
    """The client_message_id is taken: undo what this attempt counted."""


def _stored_message(conversation_id: uuid.UUID, client_message_id: str | None) -> Message | None:
    if client_message_id is None:
        return None
    return Message.objects.filter(
        conversation_id=conversation_id, client_message_id=client_message_id
    ).first()


def _count_and_insert(
    *,
    conversation: AgentConversation,
    role: str,
    content: str,
    metadata: Mapping[str, Any],
    client_message_id: str | None,
    occurred_at: dt.datetime,
) -> Message:
    usage_record_message(agent_id=conversation.agent_id, occurred_at=occurred_at)
    with connection.cursor() as cursor:
        # Under the conversation's row lock: an archive is ordered before or after us, and
        # each message's time is after its predecessor's. The analytics state moves in the
        # same UPDATE (an archived conversation's change is undone with the savepoint).
        cursor.execute(
            rollups.CONVERSATION_ADVANCE_SQL, {"conversation": conversation.id, "role": role}
        )
        row = cursor.fetchone()
        if row is None:
            raise ConversationGone()
        status, created_at, agent_id, channel, external_user_id, started_at, *state = row
        if status == ConversationStatus.ARCHIVED:
            raise ConversationArchived()
        before = rollups.ConversationBefore(
            agent_id=agent_id,
            channel=channel,
            external_user_id=external_user_id,
            started_at=started_at,
            reply_pending_since=state[0],
            first_response_at=state[1],
            activity_day=state[2],
        )
        parameters, answered_on = rollups.message_insert_parameters(
            before=before, role=role, at=created_at
        )
        cursor.execute(
            rollups.MESSAGE_INSERT_SQL,
            {
                **parameters,
                "agent": agent_id,
                "conversation": conversation.id,
                "role": role,
                "content": content,
                "metadata": json.dumps(metadata),
                "client_message_id": client_message_id,
                "at": created_at,
            },
        )
        inserted = cursor.fetchone()
    if inserted is None:
        raise _AlreadyStored()
    if answered_on is not None:
        rollups.answered_on_start_day_count(agent_id=agent_id, day=answered_on, channel=channel)
    if inserted[1] and external_user_id is not None:
        rollups.end_user_return_count(
            agent_id=agent_id, day=parameters["day"], channel=channel,
            external_user_id=external_user_id,
        )  # fmt: skip
    return Message(
        id=inserted[0],
        agent_id=conversation.agent_id,
        conversation_id=conversation.id,
        role=role,
        content=content,
        metadata=dict(metadata),
        client_message_id=client_message_id,
        created_at=created_at,
    )


@transaction.atomic
def message_post(
    *,
    conversation: AgentConversation,
    role: str,
    content: str,
    metadata: Mapping[str, Any] | None = None,
    client_message_id: str | None = None,
) -> tuple[Message, bool]:
    """Store a message and count it toward usage; return it and whether it is new.

    A `client_message_id` already stored in the conversation returns the stored message and
    counts nothing, also when the retry races the original. Refusals (archived conversation
    409, paused agent 409, quota 429) write nothing.
    """
    stored = _stored_message(conversation.id, client_message_id)
    if stored is not None:
        return stored, False
    if conversation.status == ConversationStatus.ARCHIVED:
        raise ConversationArchived()
    try:
        # A savepoint: a retry that lost the race undoes the usage it counted.
        with transaction.atomic():
            message = _count_and_insert(
                conversation=conversation,
                role=role,
                content=content,
                metadata=metadata or {},
                client_message_id=client_message_id,
                occurred_at=timezone.now(),
            )
        _emit(conversation.agent_id, "message.created", message_event_data(message))
        return message, True
    except _AlreadyStored:
        pass
    except (AgentNotActive, QuotaExceeded, ConversationArchived):
        # The original may have been stored while this retry waited: it answers, not the refusal.
        stored = _stored_message(conversation.id, client_message_id)
        if stored is None:
            raise
        return stored, False
    stored = _stored_message(conversation.id, client_message_id)
    if stored is None:  # pragma: no cover - the conflicting row was committed before us
        raise ConversationGone()
    return stored, False
