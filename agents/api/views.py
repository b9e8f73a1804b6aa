from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import selectors, services
from agents.api.serializers import (
    AgentAccessSerializer,
    AgentCreatedSerializer,
    AgentCreateSerializer,
    AgentMoveSerializer,
    AgentSerializer,
    AgentWriteSerializer,
    HandleAvailabilitySerializer,
    PublicAgentSerializer,
    agent_list_item,
)
from agents.api.visibility import agent_role_check
from agents.errors import NotATeamAgent
from agents.handles import RESERVED_HANDLES, handle_problem
from agents.models import A1Agent, AgentStatus, AgentType
from audit.actors import actor_for
from core.filters import RowsFilterSet
from core.permissions import IsOwner, IsOwnerOrStaff
from core.principals import owner_of
from teams.roles import Role

UUID_PATH_REGEX = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class AgentFilter(RowsFilterSet):
    status = filters.ChoiceFilter(choices=AgentStatus.choices)
    agent_type = filters.ChoiceFilter(choices=AgentType.choices)
    team = filters.CharFilter(
        method="filter_team",
        label="Only this team's agents (a team id), or `none` for only your own",
    )

    class Meta:
        model = A1Agent
        fields = ("status", "agent_type", "team")

    def filter_team(self, queryset: Any, name: str, value: str) -> Any:
        return selectors.of_team(queryset, value)


# The role in an agent's team that each action needs (docs/teams.md); the owner of a
# personal agent may do everything.
ACTION_ROLES = {
    "retrieve": Role.VIEWER,
    "partial_update": Role.EDITOR,
    "pause": Role.EDITOR,
    "resume": Role.EDITOR,
    "archive": Role.EDITOR,
    "destroy": Role.MANAGER,
    "rotate_key": Role.MANAGER,
    "move": Role.MANAGER,  # the service also checks the receiving team, under its lock
    "access": Role.VIEWER,  # reading it; changing it needs ADMIN (ACCESS_CHANGE_ROLE)
}
ACCESS_CHANGE_ROLE = Role.ADMIN


@extend_schema_view(
    list=extend_schema(summary="List your agents", responses=AgentSerializer(many=True)),
    retrieve=extend_schema(summary="Read one agent", responses=AgentSerializer),
    create=extend_schema(
        summary="Create an agent and its app, your own or a team's",
        request=AgentCreateSerializer,
        responses={201: AgentCreatedSerializer},
    ),
    partial_update=extend_schema(
        summary="Change an agent's details",
        request=AgentWriteSerializer(partial=True),
        responses=AgentSerializer,
    ),
    destroy=extend_schema(summary="Delete an agent, its app and all its data"),
)
class AgentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[A1Agent],
):
    """Owners' agents, their own and their teams'. Another owner's or another team's agent is
    404 on every route; a team's agent needs the role `ACTION_ROLES` names (else 403). Staff
    see all and may do what their role's permissions allow (`core.staff_permissions`,
    resource `agent`)."""

    serializer_class = AgentSerializer
    permission_classes = [IsOwnerOrStaff]
    staff_resource = "agent"
    filterset_class = AgentFilter
    lookup_value_regex = UUID_PATH_REGEX
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[A1Agent]:
        return selectors.agent_queryset_for(self.request.user)

    def get_object(self) -> A1Agent:
        agent = super().get_object()
        changing_access = self.action == "access" and self.request.method == "PUT"
        needs = ACCESS_CHANGE_ROLE if changing_access else ACTION_ROLES[self.action]
        agent_role_check(self.request.user, agent, needs=needs)
        return agent

    def get_permissions(self) -> Any:
        if self.action == "create":
            return [IsOwner()]  # the agent is the signed-in owner's; staff add in the admin
        return super().get_permissions()

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # Every answer here may carry contact details or an app key: no cache may keep it.
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # One hand-written SELECT of the visible agents, paged by DRF's cursor (core.sql_rows):
        # the ORM's query building cost more than the query.
        visible: Any = selectors.agent_rows_for(request.user)
        rows = self.filter_queryset(visible)
        page = self.paginate_queryset(rows)
        assert page is not None  # the list is always paginated
        zone = timezone.get_current_timezone()
        return self.get_paginated_response([agent_list_item(row, zone) for row in page])

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        owner = owner_of(request.user)
        assert owner is not None  # IsOwner
        serializer = AgentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        team_id = fields.pop("team", None)
        agent, app_key = services.agent_create(
            owner_id=team_id or owner.id,
            team_id=team_id,
            member_id=owner.id,
            actor=actor_for(request.user),
            **fields,
        )
        agent.app_key = app_key  # type: ignore[attr-defined]
        return Response(AgentCreatedSerializer(agent).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = AgentWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        agent = services.agent_update(
            agent=self.get_object(), actor=actor_for(request.user), **serializer.validated_data
        )
        return Response(AgentSerializer(agent).data)

    def perform_destroy(self, instance: A1Agent) -> None:
        services.agent_delete(agent=instance, actor=actor_for(self.request.user))

    @extend_schema(summary="Pause an agent", request=None, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        agent = services.agent_pause(agent=self.get_object(), actor=actor_for(request.user))
        return Response(AgentSerializer(agent).data)

    @extend_schema(
        summary="Resume a paused or archived agent", request=None, responses=AgentSerializer
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        agent = services.agent_resume(agent=self.get_object(), actor=actor_for(request.user))
        return Response(AgentSerializer(agent).data)

    @extend_schema(summary="Archive an agent", request=None, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        agent = services.agent_archive(agent=self.get_object(), actor=actor_for(request.user))
        return Response(AgentSerializer(agent).data)

    @extend_schema(
        summary="Give the agent's app a new key",
        description="The old key stops working at once. The new key is shown only here.",
        request=None,
        responses=AgentCreatedSerializer,
    )
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request: Request, pk: str | None = None) -> Response:
        agent, app_key = services.agent_rotate_key(
            agent=self.get_object(), actor=actor_for(request.user)
        )
        agent.app_key = app_key  # type: ignore[attr-defined]
        return Response(AgentCreatedSerializer(agent).data)

    @extend_schema(
        summary="Move an agent to a team, or from a team to your own account",
        description="Your own agent, or a team's with the manager role; into a team you need "
        "the editor role there. The receiving account's plan must have room "
        "(403 `agent_limit_reached`). Everything under the agent moves with it.",
        request=AgentMoveSerializer,
        responses=AgentSerializer,
    )
    @action(detail=True, methods=["post"])
    def move(self, request: Request, pk: str | None = None) -> Response:
        owner = owner_of(request.user)
        if owner is None:  # no staff role has a `move` permission; none acts as an owner
            raise exceptions.PermissionDenied("Only an owner moves their agents.")
        serializer = AgentMoveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent = services.agent_move(
            agent=self.get_object(),
            to_team_id=serializer.validated_data["team"],
            member_id=owner.id,
            actor=actor_for(request.user),
        )
        return Response(AgentSerializer(agent).data)

    @extend_schema(
        methods=["GET"],
        summary="Who of its team may reach a team's agent",
        request=None,
        responses=AgentAccessSerializer,
    )
    @extend_schema(
        methods=["PUT"],
        summary="Restrict a team's agent to chosen members, or open it to the team",
        description="Needs the admin role in the agent's team. 409 `not_a_team_agent` for "
        "your own agent.",
        request=AgentAccessSerializer,
        responses=AgentAccessSerializer,
    )
    @action(detail=True, methods=["get", "put"])
    def access(self, request: Request, pk: str | None = None) -> Response:
        agent = self.get_object()
        if request.method == "PUT":
            serializer = AgentAccessSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            members = serializer.validated_data.get("members", [])
            agent = services.agent_access_set(
                agent=agent,
                access=serializer.validated_data["access"],
                members={member["user_id"]: member["role"] for member in members},
                actor=actor_for(request.user),
            )
        elif agent.team_id is None:
            raise NotATeamAgent()
        body = {"access": agent.access, "members": selectors.agent_access_members(agent.pk)}
        return Response(AgentAccessSerializer(body).data)


class HandleAvailabilityView(APIView):
    """Tell whether a handle can be taken: well-formed, not reserved, not in use."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(summary="Check a handle", responses=HandleAvailabilitySerializer)
    def get(self, request: Request, handle: str) -> Response:
        reason = None
        detail = handle_problem(handle)
        if detail:
            reason = "reserved" if handle.casefold() in RESERVED_HANDLES else "invalid"
        elif selectors.handle_is_taken(handle):
            reason, detail = "taken", "This handle is already taken."
        body = {"handle": handle, "available": reason is None, "reason": reason, "detail": detail}
        return Response(HandleAvailabilitySerializer(body).data)


class PublicAgentView(APIView):
    """The public profile of an active agent; 404 for paused, archived or unknown handles."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Public profile of an agent",
        responses={200: PublicAgentSerializer, 404: OpenApiResponse(description="No such agent")},
    )
    def get(self, request: Request, handle: str) -> Response:
        agent = selectors.agent_public_by_handle(handle)
        if agent is None:
            return Response(
                {"code": "not_found", "detail": "No active agent has this handle."},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(PublicAgentSerializer(agent).data)
