"""The audit API: an owner reads their agent's trail, newest first."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from agents.api.audit.serializers import AuditEntrySerializer
from agents.api.visibility import visible_agent_id
from audit.models import AuditEntry
from audit.selectors import audit_entries_for_agent
from core.permissions import IsOwnerOrStaff


class AgentAuditView(generics.ListAPIView[AuditEntry]):
    """Every recorded change to one of your agents, its app key and its integrations."""

    serializer_class = AuditEntrySerializer
    permission_classes = [IsOwnerOrStaff]
    staff_resource = "audit_entry"

    def get_queryset(self) -> QuerySet[AuditEntry]:
        if getattr(self, "swagger_fake_view", False):
            return AuditEntry.objects.none()
        agent_id = self.kwargs["agent_id"]
        # Another owner's agent is as unknown as one that does not exist.
        return audit_entries_for_agent(visible_agent_id(self.request.user, agent_id))

    @extend_schema(
        summary="An agent's audit trail",
        description="Who changed the agent, its app key or its integrations, what changed "
        "(personal data and secrets redacted) and when; newest first, cursor-paginated. "
        "Another owner's agent is 404.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
