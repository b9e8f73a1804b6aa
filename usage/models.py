"""Daily usage per agent (seed table `agent_usage`)."""

import uuid

from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models


class AgentUsage(models.Model):
    """One agent's counters for one UTC day; rows are upserted, never read-modify-written."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    agent = models.ForeignKey(
        "agents.A1Agent",
        on_delete=models.DO_NOTHING,
        db_column="agent_id",
        db_index=False,
        related_name="usage_days",
    )

    date = models.DateField()
    message_count = models.IntegerField(null=True, default=0, db_default=0)
    api_calls = models.IntegerField(null=True, default=0, db_default=0)
    storage_bytes = models.BigIntegerField(null=True, default=0, db_default=0)
    # When the storage gauge was measured: a report older than the kept value does not win.
    storage_measured_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.IntegerField(null=True, default=0, db_default=0)

    estimated_cost = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, default=0, db_default=0
    )

    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())

    class Meta:
        db_table = "agent_usage"
        verbose_name_plural = "agent usage"
        constraints = [
            models.UniqueConstraint(fields=["agent", "date"], name="unique_agent_date"),
        ]
        indexes = [
            models.Index(fields=["agent", "date"], name="idx_agent_usage_agent_id_date"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} on {self.date}"


class UsageEventId(models.Model):
    """A client event id already counted for an agent: a repeat is a duplicate, forever
    within the 35-day window (older events are refused anyway, so older ids are pruned)."""

    pk = models.CompositePrimaryKey("agent_id", "event_id")
    agent = models.ForeignKey(
        "agents.A1Agent", on_delete=models.DO_NOTHING, db_column="agent_id", db_index=False
    )
    event_id = models.TextField()
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())

    class Meta:
        db_table = "usage_event_ids"
        indexes = [models.Index(fields=["occurred_at"], name="usage_event_ids_occurred")]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.event_id}"


class UserMonthlyUsage(models.Model):
    """A running count of one user's messages in one calendar month (UTC), across agents.

    Kept in the same transaction as agent_usage, so a quota check is one indexed read, not a
    month-long SUM per message.
    """

    pk = models.CompositePrimaryKey("user_id", "month")
    user_id = models.TextField()
    month = models.DateField(help_text="The first day of the month.")
    message_count = models.BigIntegerField(default=0, db_default=0)
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())

    class Meta:
        db_table = "user_monthly_usage"
        verbose_name_plural = "user monthly usage"
        # The monthly close reads one month of every account (invoicing.closing); the
        # primary key leads with the account.
        indexes = [models.Index(fields=["month"], name="idx_user_monthly_usage_month")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.month:%Y-%m}"


class UsageAlertKind(models.TextChoices):
    THRESHOLD = "threshold"
    HARD_CAP = "hard_cap"


class UsageAlert(models.Model):
    """A usage threshold an owner reached in a month: written once, by the statement that
    moved the month's counter across it (INGEST_SQL), or when a hard cap first refused a
    message. The row is the outbox of its webhook (`notified_at`) and its email (`emailed_at`).
    """

    id = models.BigAutoField(primary_key=True)
    user_id = models.TextField()
    month = models.DateField(help_text="The first day of the month.")
    kind = models.TextField(choices=UsageAlertKind.choices)
    percent = models.IntegerField()
    message_count = models.BigIntegerField(help_text="The month's messages when it fired.")
    included_messages = models.IntegerField()
    created_at = models.DateTimeField(db_default=TransactionNow())
    notified_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "usage_alerts"
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "month", "kind", "percent"], name="usage_alert_once"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=UsageAlertKind.values), name="usage_alerts_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(percent__gte=1, percent__lte=100),
                name="usage_alerts_percent_range",
            ),
            models.CheckConstraint(
                condition=models.Q(included_messages__gte=0),
                name="usage_alerts_included_positive",
            ),
        ]
        indexes = [
            # The sweep: alerts whose webhook or email is still to be sent.
            models.Index(
                fields=["created_at"],
                name="usage_alerts_unsent",
                condition=models.Q(notified_at__isnull=True) | models.Q(emailed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.month:%Y-%m} {self.kind} {self.percent}%"
