"""Conversations of an agent and their messages (seed `agent_conversations`, `messages`)."""

import datetime as dt
import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models
from django.db.models import Q, Value

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

    # The analytics state, beside the seed's columns, moved by every message under this row's
    # lock (conversations/rollups.py): when the earliest user message no agent message has
    # answered yet was written, when the first answer came, and the UTC day of the latest
    # message (a conversation counts once per day as active).
    reply_pending_since = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    activity_day = models.DateField(null=True, blank=True)

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


# Response times go into RESPONSE_BUCKETS buckets, four per doubling: bucket i holds the
# times t (seconds) with 2^(i/4) - 1 <= t < 2^((i+1)/4) - 1, the last one everything longer
# (2^24 s, 194 days). The bounds are whole microseconds, so Python (bisect) and PostgreSQL
# (width_bucket) put a time in the same bucket.
RESPONSE_BUCKETS = 96
RESPONSE_BUCKET_BOUNDS_US = tuple(
    round((2 ** ((i + 1) / 4) - 1) * 1_000_000) for i in range(RESPONSE_BUCKETS - 1)
)


def _empty_buckets() -> list[int]:
    return [0] * RESPONSE_BUCKETS


class ActivityCounters(models.Model):
    """The rollup's counters and histograms, per day and channel or per day."""

    conversations_started = models.IntegerField(default=0, db_default=0)
    # Of the conversations started this day, how many an agent message has answered so far.
    conversations_answered = models.IntegerField(default=0, db_default=0)
    active_conversations = models.IntegerField(default=0, db_default=0)
    end_users = models.IntegerField(default=0, db_default=0)
    user_messages = models.IntegerField(default=0, db_default=0)
    agent_messages = models.IntegerField(default=0, db_default=0)
    system_messages = models.IntegerField(default=0, db_default=0)
    tool_messages = models.IntegerField(default=0, db_default=0)
    responses = models.IntegerField(default=0, db_default=0)
    response_buckets = ArrayField(
        models.IntegerField(),
        size=RESPONSE_BUCKETS,
        default=_empty_buckets,
        db_default=Value([0] * RESPONSE_BUCKETS, output_field=ArrayField(models.IntegerField())),
    )
    first_responses = models.IntegerField(default=0, db_default=0)
    first_response_buckets = ArrayField(
        models.IntegerField(),
        size=RESPONSE_BUCKETS,
        default=_empty_buckets,
        db_default=Value([0] * RESPONSE_BUCKETS, output_field=ArrayField(models.IntegerField())),
    )

    class Meta:
        abstract = True


# The CHECKs every table of ActivityCounters holds.
COUNTS_NOT_NEGATIVE = Q(
    conversations_started__gte=0,
    conversations_answered__gte=0,
    active_conversations__gte=0,
    end_users__gte=0,
    user_messages__gte=0,
    agent_messages__gte=0,
    system_messages__gte=0,
    tool_messages__gte=0,
    responses__gte=0,
    first_responses__gte=0,
)
BUCKETS_COMPLETE = Q(response_buckets__len=RESPONSE_BUCKETS) & Q(
    first_response_buckets__len=RESPONSE_BUCKETS
)


class AgentActivityDay(ActivityCounters):
    """One agent's activity on one UTC day and channel: the analytics rollup.

    Counters are added to by the message write path (conversations/rollups.py) and can be
    recomputed from messages (`manage.py rebuild_analytics`). Histograms add bucket by bucket,
    so any range of days merges into one exact histogram.
    """

    pk = models.CompositePrimaryKey("agent_id", "day", "channel")
    agent = models.ForeignKey(
        "agents.A1Agent", on_delete=models.DO_NOTHING, db_column="agent_id", db_index=False
    )
    day = models.DateField()
    channel = models.TextField(choices=Channel.choices)

    class Meta:
        db_table = "agent_activity_days"
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="agent_activity_days_valid_channel"
            ),
            models.CheckConstraint(
                condition=COUNTS_NOT_NEGATIVE,
                name="agent_activity_days_counts_not_negative",
            ),
            models.CheckConstraint(
                condition=BUCKETS_COMPLETE,
                name="agent_activity_days_bucket_count",
            ),
        ]
        indexes = [
            # The staff ranking reads every agent's days of a range. `day` never changes, so
            # the write path's updates of a row stay HOT.
            models.Index(fields=["day"], name="agent_activity_days_day"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.channel} on {self.day}"


class AgentActivityDayTotal(ActivityCounters):
    """One agent's activity on one UTC day over all its channels: the sum of the day's
    `agent_activity_days` rows, kept beside them by the same statements, so a read over all
    channels takes one row a day instead of one per channel."""

    pk = models.CompositePrimaryKey("agent_id", "day")
    agent = models.ForeignKey(
        "agents.A1Agent", on_delete=models.DO_NOTHING, db_column="agent_id", db_index=False
    )
    day = models.DateField()

    class Meta:
        db_table = "agent_activity_day_totals"
        constraints = [
            models.CheckConstraint(
                condition=COUNTS_NOT_NEGATIVE,
                name="agent_activity_day_totals_counts_not_negative",
            ),
            models.CheckConstraint(
                condition=BUCKETS_COMPLETE,
                name="agent_activity_day_totals_bucket_count",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} on {self.day}"


class AgentActivityUser(models.Model):
    """An end user (`external_user_id`) active with an agent on one UTC day and channel.

    Distinct users over several days cannot be added from daily counts; these rows are
    counted distinct over the range instead.
    """

    pk = models.CompositePrimaryKey("agent_id", "day", "channel", "external_user_id")
    agent = models.ForeignKey(
        "agents.A1Agent", on_delete=models.DO_NOTHING, db_column="agent_id", db_index=False
    )
    day = models.DateField()
    channel = models.TextField(choices=Channel.choices)
    external_user_id = models.TextField()

    class Meta:
        db_table = "agent_activity_users"
        indexes = [
            # The write path looks up an end user's active days before and after a new one.
            models.Index(
                fields=["agent", "channel", "external_user_id", "day"],
                name="agent_activity_users_user_days",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_user_id} with {self.agent_id} on {self.day}"


# An end user never active with the agent on the channel before.
NEVER_ACTIVE_BEFORE = dt.date(1, 1, 1)


class AgentActivityReturn(models.Model):
    """The end users active with an agent on one UTC day and channel, counted by the day each
    was last active before it (`previous_day`; NEVER_ACTIVE_BEFORE for a first visit).

    Distinct end users over any range [start, end] are the sum of `end_users` over the
    range's days whose `previous_day` is before `start`: each end user counts once, on the
    first of their days in the range. Exact, and the rows follow the days and the distinct
    gaps between visits, not the end users.
    """

    pk = models.CompositePrimaryKey("agent_id", "day", "channel", "previous_day")
    agent = models.ForeignKey(
        "agents.A1Agent", on_delete=models.DO_NOTHING, db_column="agent_id", db_index=False
    )
    day = models.DateField()
    channel = models.TextField(choices=Channel.choices)
    previous_day = models.DateField()
    end_users = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "agent_activity_returns"
        constraints = [
            models.CheckConstraint(
                condition=Q(end_users__gte=0), name="agent_activity_returns_users_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(previous_day__lt=models.F("day")),
                name="agent_activity_returns_previous_before_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.end_users} back on {self.day} since {self.previous_day}"
