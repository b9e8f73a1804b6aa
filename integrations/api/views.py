"""The integrations API: owners connect providers to their agents; staff read them and,
as their role allows, disable or remove them."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from agents.api.views import UUID_PATH_REGEX
from agents.api.visibility import visible_agent_id
from audit.actors import actor_for
from core.permissions import IsOwnerOrStaff
from integrations import selectors, services
from integrations.api.serializers import (
    IntegrationCreateSerializer,
    IntegrationSerializer,
    IntegrationUpdateSerializer,
)
from integrations.models import AgentIntegration
from teams.roles import Role


@extend_schema_view(
    list=extend_schema(
        summary="List an agent's integrations",
        parameters=[
            OpenApiParameter("agent", OpenApiTypes.UUID, required=True, description="The agent.")
        ],
        responses=IntegrationSerializer(many=True),
    ),
    retrieve=extend_schema(summary="Read one integration", responses=IntegrationSerializer),
    create=extend_schema(
        summary="Connect a provider to an agent",
        description="One integration per agent and provider. Secrets are stored encrypted and "
        "only ever shown masked.",
        request=IntegrationCreateSerializer,
        responses={201: IntegrationSerializer},
    ),
    partial_update=extend_schema(
        summary="Change an integration's settings or status",
        request=IntegrationUpdateSerializer,
        responses=IntegrationSerializer,
    ),
    destroy=extend_schema(summary="Remove an integration and its secrets"),
)
class IntegrationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[AgentIntegration],
):
    """Integrations of an owner's agents. Another owner's is 404 on every route."""

    serializer_class = IntegrationSerializer
    permission_classes = [IsOwnerOrStaff]
    staff_resource = "integration"
    lookup_value_regex = UUID_PATH_REGEX
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[AgentIntegration]:
        integrations = selectors.integration_queryset_for(self.request.user)
        if self.action == "list" and not getattr(self, "swagger_fake_view", False):
            raw = self.request.query_params.get("agent")
            if raw is None:
                raise exceptions.ValidationError({"agent": ["This query parameter is required."]})
            integrations = integrations.filter(
                agent_id=visible_agent_id(self.request.user, raw, field="agent")
            )
        return integrations

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = IntegrationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        integration = services.integration_create(
            agent_id=visible_agent_id(
                request.user, fields["agent"], field="agent", needs=Role.MANAGER
            ),
            provider=fields["provider"],
            config=fields["config"],
            actor=actor_for(request.user),
        )
        return Response(IntegrationSerializer(integration).data, status=status.HTTP_201_CREATED)

    def get_object(self) -> AgentIntegration:
        integration = super().get_object()
        if self.action != "retrieve":  # changing one needs the manager role in a team
            visible_agent_id(self.request.user, integration.agent_id, needs=Role.MANAGER)
        return integration

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        integration = self.get_object()
        serializer = IntegrationUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        integration = services.integration_update(
            integration_id=integration.id,
            actor=actor_for(request.user),
            **serializer.validated_data,
        )
        return Response(IntegrationSerializer(integration).data)

    def perform_destroy(self, instance: AgentIntegration) -> None:
        services.integration_delete(integration_id=instance.id, actor=actor_for(self.request.user))
