"""Writes to integrations: create, update, delete, with provider configs validated and
their secrets encrypted (see `integrations.providers`).

One integration per agent and provider is the database's rule (`unique_agent_provider`);
a second one, also when two requests race, answers 400 on `provider`.
"""

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from integrations.errors import IntegrationInvalid
from integrations.models import AgentIntegration, IntegrationStatus
from integrations.providers import ConfigInvalid, config_build
from usage.errors import AgentGone


def _config_document(
    *, provider: str, changes: Mapping[str, Any], stored: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    try:
        return config_build(provider=provider, changes=changes, stored=stored)
    except ConfigInvalid as invalid:
        raise IntegrationInvalid({"config": invalid.errors}) from None


def _hold_agent(agent_id: uuid.UUID) -> None:
    """Keep the agent from being deleted until commit; refuse if it is already gone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM a1_agents WHERE id = %s FOR KEY SHARE", [agent_id])
        if cursor.fetchone() is None:
            raise AgentGone()


@transaction.atomic
def integration_create(
    *, agent_id: uuid.UUID, provider: str, config: Mapping[str, Any]
) -> AgentIntegration:
    """Connect a provider to an agent, its secrets encrypted; one per agent and provider."""
    document = _config_document(provider=provider, changes=config)
    _hold_agent(agent_id)
    integration = AgentIntegration(
        agent_id=agent_id,
        provider=provider,
        config=document,
        status=IntegrationStatus.ACTIVE,
        last_sync_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            integration.save(force_insert=True)
    except IntegrityError as error:
        if "unique_agent_provider" in str(error):
            raise IntegrationInvalid(
                {"provider": [f"This agent already has a {provider} integration."]}
            ) from None
        raise
    return integration


@transaction.atomic
def integration_update(
    *,
    integration_id: uuid.UUID,
    config: Mapping[str, Any] | None = None,
    status: str | None = None,
) -> AgentIntegration:
    """Merge configuration changes into the stored configuration and/or set the status.

    Keys left out keep their values (secrets need not be sent again), `null` removes an
    optional key. A changed configuration sets `last_sync_at` and clears an `error` status.
    """
    integration = AgentIntegration.objects.select_for_update().get(pk=integration_id)
    if config is not None:
        document = _config_document(
            provider=integration.provider, changes=config, stored=integration.config
        )
        if document != integration.config:
            integration.config = document
            integration.last_sync_at = timezone.now()
            if integration.status == IntegrationStatus.ERROR:
                integration.status = IntegrationStatus.ACTIVE
    if status is not None:
        integration.status = status
    integration.save(update_fields=["config", "status", "last_sync_at", "updated_at"])
    return integration


@transaction.atomic
def integration_delete(*, integration_id: uuid.UUID) -> None:
    """Remove the integration and its stored secrets."""
    AgentIntegration.objects.filter(pk=integration_id).delete()
