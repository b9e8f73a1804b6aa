"""Third-party integrations of an agent (seed `agent_integrations`).

`config` holds `{"public": {...}, "secrets": {name: Fernet ciphertext}}`; which keys belong
where, per provider, is declared in `integrations.providers`.
"""

import uuid

from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models
from django.db.models import Q


class Provider(models.TextChoices):
    WHATSAPP = "whatsapp"
    SLACK = "slack"
    DISCORD = "discord"
    TELEGRAM = "telegram"
    EMAIL = "email"
    WEBHOOK = "webhook"


class IntegrationStatus(models.TextChoices):
    ACTIVE = "active"
    DISABLED = "disabled"
    # Set by the platform when the provider refuses the configuration, never by a client.
    ERROR = "error"


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

    provider = models.TextField(choices=Provider.choices)
    status = models.TextField(
        null=True,
        choices=IntegrationStatus.choices,
        default=IntegrationStatus.ACTIVE,
        db_default=IntegrationStatus.ACTIVE,
    )

    config = models.JSONField(default=dict, db_default={})

    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())
    last_sync_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agent_integrations"
        constraints = [
            models.UniqueConstraint(fields=["agent", "provider"], name="unique_agent_provider"),
            models.CheckConstraint(
                condition=Q(provider__in=Provider.values),
                name="agent_integrations_valid_provider",
            ),
            models.CheckConstraint(
                condition=Q(status__in=IntegrationStatus.values),
                name="agent_integrations_valid_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} for {self.agent_id}"
