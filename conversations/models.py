"""Conversations of an agent and their messages (seed `agent_conversations`, `messages`)."""

import uuid

from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models
from django.db.models import Q

from core.schema import SeedIndex


class ConversationStatus(models.TextChoices):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Channel(models.TextChoices):
    WEB = "web"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    SMS = "sms"
    SLACK = "slack"
    DISCORD = "discord"
    TELEGRAM = "telegram"
    API = "api"


class MessageRole(models.TextChoices):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"
    TOOL = "tool"


class AgentConversation(models.Model):
    """A thread between an agent and one person on one channel."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    agent = models.ForeignKey(
        "agents.A1Agent",
        on_delete=models.DO_NOTHING,
        db_column="agent_id",
        db_index=False,
        related_name="conversations",
    )

    external_user_id = models.TextField(null=True, blank=True)
    channel = models.TextField(choices=Channel.choices)
    thread_id = models.TextField(null=True, blank=True)

    status = models.TextField(
        null=True,
        choices=ConversationStatus.choices,
        default=ConversationStatus.ACTIVE,
        db_default=ConversationStatus.ACTIVE,
    )

    started_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    last_message_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    ended_at = models.DateTimeField(null=True, blank=True)

    metadata = models.JSONField(null=True, blank=True, default=dict, db_default={})

    class Meta:
        db_table = "agent_conversations"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ConversationStatus.values),
                name="agent_conversations_valid_status",
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="agent_conversations_valid_channel"
            ),
            # One conversation per thread of a channel: a retried webhook finds it again
            # (INSERT … ON CONFLICT DO NOTHING in conversation_open).
            models.UniqueConstraint(
                fields=["agent", "channel", "thread_id"],
                condition=Q(thread_id__isnull=False),
                name="agent_conversations_agent_channel_thread_key",
            ),
        ]
        indexes = [
            SeedIndex(fields=["agent"], name="idx_agent_conversations_agent_id"),
            SeedIndex(fields=["external_user_id"], name="idx_agent_conversations_external_user"),
            # An agent's conversations, most recent activity first (the owners' list).
            SeedIndex(
                fields=["agent", "-last_message_at", "-id"],
                name="idx_agent_conversations_agent_activity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} conversation {self.id}"


class Message(models.Model):
    """One message of a conversation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    agent = models.ForeignKey(
        "agents.A1Agent",
        null=True,
        on_delete=models.DO_NOTHING,
        db_column="agent_id",
        related_name="messages",
    )
    conversation = models.ForeignKey(
        AgentConversation,
        null=True,
        on_delete=models.DO_NOTHING,
        db_column="conversation_id",
        db_index=False,
        related_name="messages",
    )
    role = models.TextField(choices=MessageRole.choices)
    content = models.TextField()
    metadata = models.JSONField(null=True, blank=True, default=dict, db_default={})
    # The app's own id for the message: a retry with the same id stores and counts nothing.
    client_message_id = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())

    class Meta:
        db_table = "messages"
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=MessageRole.values), name="messages_valid_role"
            ),
            models.UniqueConstraint(
                fields=["conversation", "client_message_id"],
                condition=Q(client_message_id__isnull=False),
                name="messages_conversation_client_message_id_key",
            ),
        ]
        indexes = [
            # Reading a conversation in order, with a tie-breaker for keyset pagination.
            models.Index(
                fields=["conversation", "created_at", "id"],
                name="idx_messages_conversation_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} message {self.id}"
