"""Writes to integrations: create, update, delete, with provider configs validated and
their secrets encrypted (see `integrations.providers`).

One integration per agent and provider is the database's rule (`unique_agent_provider`);
a second one, also when two requests race, answers 400 on `provider`.

Every change is recorded in the audit trail, in the same transaction: which settings
changed, with public values shown and secrets (and contact addresses) redacted.
"""

import json
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agents.locks import agent_hold_existence
from agents.selectors import agent_owner_id
from audit.actors import SYSTEM, Actor
from audit.models import TargetType
from audit.services import audit_diff
from core.encryption import KeyRotation
from integrations.errors import IntegrationInvalid
from integrations.models import AgentIntegration, IntegrationStatus
from integrations.providers import ConfigInvalid, config_build
from notifications.events import event_emit
from usage.errors import AgentGone

# Public settings that are contact details: recorded as changed, never with their values.
CONTACT_SETTINGS = frozenset({"address", "smtp_username"})


def _config_document(
    *, provider: str, changes: Mapping[str, Any], stored: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    try:
        return config_build(provider=provider, changes=changes, stored=stored)
    except ConfigInvalid as invalid:
        raise IntegrationInvalid({"config": invalid.errors}) from None


def _hold_agent(agent_id: uuid.UUID) -> str:
    """Keep the agent from being deleted until commit; refuse if it is already gone.

    Return the agent's owner id.
    """
    agent = agent_hold_existence(agent_id)
    if agent is None:
        raise AgentGone()
    return agent.owner_id


def _audited_state(integration: AgentIntegration | None) -> tuple[dict[str, Any], set[str]]:
    """The integration as the trail compares it, and the names of its secret settings.

    Secrets are compared by ciphertext, which differs on every encryption: a secret sent
    again counts as changed. Their values never reach the trail (see `_record`).
    """
    if integration is None:
        return {}, set()
    config = integration.config if isinstance(integration.config, Mapping) else {}
    public = config.get("public")
    secrets = config.get("secrets")
    public = public if isinstance(public, Mapping) else {}
    secrets = secrets if isinstance(secrets, Mapping) else {}
    state: dict[str, Any] = {"provider": integration.provider, "status": integration.status}
    state.update({f"config.{name}": value for name, value in public.items()})
    state.update({f"config.{name}": value for name, value in secrets.items()})
    return state, {f"config.{name}" for name in secrets}


def _record(
    integration: AgentIntegration,
    *,
    actor: Actor,
    action: str,
    owner_id: str | None,
    before: tuple[dict[str, Any], set[str]],
    after: tuple[dict[str, Any], set[str]],
) -> None:
    (old, old_secrets), (new, new_secrets) = before, after
    redacted = old_secrets | new_secrets | {f"config.{name}" for name in CONTACT_SETTINGS}
    audit_diff(
        actor=actor,
        action=action,
        target_type=TargetType.INTEGRATION,
        target_id=integration.pk,
        before=old,
        after=new,
        redacted=redacted,
        agent_id=integration.agent_id,
        owner_id=owner_id,
    )


@transaction.atomic
def integration_create(
    *, agent_id: uuid.UUID, provider: str, config: Mapping[str, Any], actor: Actor = SYSTEM
) -> AgentIntegration:
    """Connect a provider to an agent, its secrets encrypted; one per agent and provider."""
    document = _config_document(provider=provider, changes=config)
    owner_id = _hold_agent(agent_id)
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
    _record(
        integration,
        actor=actor,
        action="integration.created",
        owner_id=owner_id,
        before=_audited_state(None),
        after=_audited_state(integration),
    )
    return integration


@transaction.atomic
def integration_update(
    *,
    integration_id: uuid.UUID,
    config: Mapping[str, Any] | None = None,
    status: str | None = None,
    actor: Actor = SYSTEM,
) -> AgentIntegration:
    """Merge configuration changes into the stored configuration and/or set the status.

    Keys left out keep their values (secrets need not be sent again), `null` removes an
    optional key. A changed configuration sets `last_sync_at` and clears an `error` status.
    """
    integration = AgentIntegration.objects.select_for_update().get(pk=integration_id)
    before = _audited_state(integration)
    status_before = integration.status
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
    owner_id = agent_owner_id(integration.agent_id)
    _record(
        integration,
        actor=actor,
        action="integration.updated",
        owner_id=owner_id,
        before=before,
        after=_audited_state(integration),
    )
    if (
        owner_id is not None
        and integration.status == IntegrationStatus.ERROR
        and status_before != IntegrationStatus.ERROR
    ):
        event_emit(
            owner_id=owner_id,
            event_type="integration.error",
            data={
                "id": integration.pk,
                "agent_id": integration.agent_id,
                "provider": integration.provider,
                "status": integration.status,
                "previous_status": status_before,
                "updated_at": integration.updated_at,
            },
        )
    return integration


@transaction.atomic
def integration_delete(*, integration_id: uuid.UUID, actor: Actor = SYSTEM) -> None:
    """Remove the integration and its stored secrets."""
    integration = AgentIntegration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None:
        return
    before = _audited_state(integration)
    AgentIntegration.objects.filter(pk=integration_id).delete()
    _record(
        integration,
        actor=actor,
        action="integration.deleted",
        owner_id=agent_owner_id(integration.agent_id),
        before=before,
        after=({}, set()),
    )


SECRETS_BATCH = """
SELECT id, config FROM agent_integrations
WHERE %(last)s::uuid IS NULL OR id > %(last)s::uuid
ORDER BY id LIMIT %(limit)s
"""


@transaction.atomic
def integration_secrets_reencrypt(
    *, after_id: uuid.UUID | None, limit: int, rotation: KeyRotation, dry_run: bool = False
) -> list[uuid.UUID]:
    """Move one batch of integrations' secrets (ids after `after_id`) to the newest key, in
    its own transaction; return the ids of the batch, in order. Locked like
    `agents.services.agent_contacts_reencrypt`."""
    lock = "" if dry_run else " FOR NO KEY UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(SECRETS_BATCH + lock, {"last": after_id, "limit": limit})
        rows = cursor.fetchall()
        changes = []
        for integration_id, raw_config in rows:
            config = json.loads(raw_config) if isinstance(raw_config, str) else raw_config
            secrets = config.get("secrets") if isinstance(config, dict) else None
            if not isinstance(secrets, dict):
                continue
            changed = False
            for name, ciphertext in secrets.items():
                new_value = rotation.rotated(
                    ciphertext, f"agent_integrations.config.secrets.{name} of {integration_id}"
                )
                if new_value is not None:
                    secrets[name] = new_value
                    changed = True
            if changed:
                changes.append((json.dumps(config), integration_id))
        if changes and not dry_run:
            cursor.executemany(
                "UPDATE agent_integrations SET config = %s::jsonb WHERE id = %s", changes
            )
    return [row[0] for row in rows]
