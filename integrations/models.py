"""Third-party integrations of an agent (seed `agent_integrations`)."""

import uuid

from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models


class AgentIntegration(models.Model):
    """One provider connected to one agent; secrets inside `config` are encrypted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    agent = models.ForeignKey(
        "agents.A1Agent",
        on_delete=models.DO_NOTHING,
        db_column="agent_id",
        db_index=False,
        related_name="integrations",
    )

    provider = models.TextField()
    status = models.TextField(null=True, default="active", db_default="active")

    config = models.JSONField(default=dict, db_default={})

    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())
    last_sync_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agent_integrations"
        constraints = [
            models.UniqueConstraint(fields=["agent", "provider"], name="unique_agent_provider"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} for {self.agent_id}"
