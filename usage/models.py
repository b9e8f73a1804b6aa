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
