"""Reads of the audit trail, newest first."""

import uuid

from django.db.models import QuerySet

from audit.models import AuditEntry


def audit_entries_for_agent(agent_id: uuid.UUID | str) -> QuerySet[AuditEntry]:
    """An agent's trail: its own changes, its app key's and its integrations'."""
    return AuditEntry.objects.filter(agent_id=agent_id).order_by("-created_at", "-id")


def audit_entries_for_owner(owner_id: str) -> QuerySet[AuditEntry]:
    """Every change to a customer's agents, keys, integrations and subscription."""
    return AuditEntry.objects.filter(owner_id=owner_id).order_by("-created_at", "-id")
