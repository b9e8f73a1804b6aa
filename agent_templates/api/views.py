"""The templates API: the marketplace (anonymous, throttled per address like every public
endpoint), owners' templates, clones and their updates."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agent_templates import selectors, services
from agent_templates.api.serializers import (
    ORDERS,
    AgentTemplateStatusSerializer,
    AppliedUpdateSerializer,
    ApplySerializer,
    CloneSerializer,
    ReportCreateSerializer,
    ReportSerializer,
    TemplateCreateSerializer,
    TemplateDetailSerializer,
    TemplateListQuerySerializer,
    TemplateSerializer,
    TemplateUpdateSerializer,
    VersionCreateSerializer,
    VersionSerializer,
)
from agent_templates.models import AgentTemplate
from agent_templates.selectors import MARKETPLACE_COLUMNS
from agent_templates.snapshot import SNAPSHOT_KEYS
from agent_templates.updates import update_preview
from agents.api.serializers import AgentCreatedSerializer
from agents.api.visibility import ROLE_TOO_LOW, visible_agent_id
from agents.errors import FieldInvalid
from agents.selectors import agent_owner_id, agent_role_for
from audit.actors import actor_for
from core.permissions import IsOwner
from core.principals import owner_of
from teams.accounts import account_id_for
from teams.roles import Role

# Any segment: a malformed slug is a template nobody has (404), after authentication (401).
SLUG_PATH_REGEX = "[^/.]+"
NO_TEMPLATE = OpenApiResponse(description="No such template, or not one you may read")


class TemplatePagination(CursorPagination):
    """The marketplace: most cloned first (`order=popular`) or most recently published
    (`order=recent`); an owner's own: newest first. The view sets `ordering`."""

    ordering = ORDERS["popular"]
    page_size = 24
    page_size_query_param = "page_size"
    max_page_size = 100


OWN_ORDER = ("-created_at", "-id")

# The role on a template each change needs (docs/teams.md): its owner's own, or for a team's
# template the member's role in the team (`selectors.template_role_of`). Reading it in every
# state needs any role; publishing from an agent needs PUBLISH_ROLE on that agent.
TEMPLATE_ACTION_ROLES = {
    "partial_update": Role.EDITOR,
    "versions": Role.EDITOR,
    "destroy": Role.MANAGER,
}
PUBLISH_ROLE = Role.EDITOR
TEMPLATE_ROLE_TOO_LOW = "Your role in the template's team does not allow this."


def _check_publishable(user: Any, agent_id: Any) -> None:
    """A template (or its new version) is made from an agent the caller may change
    (`agent_role_for`, the one rule on agents): 400 on `agent` for one they cannot see, as
    for another owner's; 403 for a role too low in the agent's team."""
    role = agent_role_for(user, agent_id)
    if role is None:
        raise FieldInvalid("agent", "No such agent of yours.")
    if role < PUBLISH_ROLE:
        raise exceptions.PermissionDenied(ROLE_TOO_LOW)


def _content_and_versions(template: AgentTemplate) -> dict[str, Any]:
    """The latest version's content and every version's number, changelog and date."""
    versions = list(selectors.versions_of(template.pk).values("number", "changelog", "created_at"))
    latest = selectors.version_of(template.pk, template.latest_version)
    snapshot = latest.snapshot if latest else {}
    return {
        "content": {key: snapshot.get(key) for key in SNAPSHOT_KEYS},
        "version_rows": versions,
    }


@extend_schema_view(
    list=extend_schema(
        summary="Browse the marketplace, or list your templates",
        description="Anyone: public templates staff approved, searched and filtered. "
        "`owner=me` (signed in): your own templates in every state, newest first.",
        parameters=[TemplateListQuerySerializer],
        responses=TemplateSerializer(many=True),
    ),
    retrieve=extend_schema(
        summary="Read a template, with its versions",
        description="Anyone may read a listed or unlisted template; its owner reads it in any "
        "state, with its moderation state. Anything else is 404.",
        responses={200: TemplateDetailSerializer, 404: NO_TEMPLATE},
    ),
    create=extend_schema(
        summary="Make a template from one of your agents",
        description="Copies only the agent's description, avatar, onboarding questions, "
        "settings, type and the providers of its integrations; never contact details, keys, "
        "secrets or conversations. `public` asks staff to list it in the marketplace.",
        request=TemplateCreateSerializer,
        responses={201: TemplateSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a template's listing or visibility",
        request=TemplateUpdateSerializer,
        responses=TemplateSerializer,
    ),
    destroy=extend_schema(summary="Delete a template; agents cloned from it stay"),
)
class TemplateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[AgentTemplate],
):
    """The marketplace (anonymous read, throttled per address like every public endpoint)
    and owners' templates. Changing one is its owner's alone (404 for others); clone and
    report take any template the caller may read."""

    serializer_class = TemplateSerializer
    pagination_class = TemplatePagination
    queryset = AgentTemplate.objects.none()  # for the schema; rows come from the selectors
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATH_REGEX
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_permissions(self) -> Any:
        if self.action in ("list", "retrieve"):
            return [permissions.AllowAny()]
        return [IsOwner()]

    def _owner_id(self) -> str:
        owner = owner_of(self.request.user)
        assert owner is not None  # IsOwner
        return owner.id

    def get_object(self) -> AgentTemplate:
        """The template to change: the caller's own, or their team's with the role the
        action needs (`TEMPLATE_ACTION_ROLES`); 404 for anyone else's, 403 for a low role."""
        template = selectors.template_by_slug(self.kwargs["slug"])
        role = None if template is None else selectors.template_role_of(self._owner_id(), template)
        if template is None or role is None:
            raise exceptions.NotFound("No such template of yours.")
        if role < TEMPLATE_ACTION_ROLES[self.action]:
            raise exceptions.PermissionDenied(TEMPLATE_ROLE_TOO_LOW)
        return template

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = TemplateListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        paginator = self.paginator
        assert isinstance(paginator, TemplatePagination)
        filters = {key: params.get(key) for key in ("q", "category", "tag", "featured")}
        rows: Any
        own = params.get("owner") == "me" or bool(params.get("team"))
        if own:
            owner = owner_of(request.user)
            if owner is None:
                self.permission_denied(request, message=IsOwner.message)
            assert owner is not None
            # `team`: that team's, for any member (404 for a team they are not in now).
            account_id = account_id_for(
                user_id=owner.id, team_id=params.get("team"), needs=Role.VIEWER
            )
            rows = selectors.templates_of_owner(account_id, **filters)
            paginator.ordering = OWN_ORDER
        else:
            rows = selectors.marketplace_templates(**filters).values("id", *MARKETPLACE_COLUMNS)
            paginator.ordering = ORDERS[params["order"]]
        page = self.paginate_queryset(rows)
        assert page is not None  # always paginated
        if not own:
            page = [{key: row[key] for key in MARKETPLACE_COLUMNS} for row in page]
        return self.get_paginated_response(TemplateSerializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        owner = owner_of(request.user)
        owner_id = owner.id if owner is not None else None
        template = selectors.template_readable_by(self.kwargs["slug"], owner_id=owner_id)
        if template is None:
            raise exceptions.NotFound("No such template.")
        extra = _content_and_versions(template)
        if owner_id is not None and selectors.template_role_of(owner_id, template) is not None:
            template.content = extra["content"]  # type: ignore[attr-defined]
            template.version_rows = extra["version_rows"]  # type: ignore[attr-defined]
            return Response(TemplateDetailSerializer(template).data)
        body = {column: getattr(template, column) for column in MARKETPLACE_COLUMNS}
        return Response(TemplateDetailSerializer(body | extra).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = TemplateCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        agent_id = data.pop("agent")
        _check_publishable(request.user, agent_id)
        # The template is the agent's account's: the caller's own, or the agent's team's.
        template = services.template_create(
            owner_id=agent_owner_id(agent_id) or self._owner_id(),
            agent_id=agent_id,
            actor=actor_for(request.user),
            **data,
        )
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = TemplateUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        template = services.template_update(
            template=self.get_object(), actor=actor_for(request.user), **serializer.validated_data
        )
        return Response(TemplateSerializer(template).data)

    def perform_destroy(self, instance: AgentTemplate) -> None:
        services.template_delete(template=instance, actor=actor_for(self.request.user))

    def _readable(self) -> AgentTemplate:
        template = selectors.template_readable_by(self.kwargs["slug"], owner_id=self._owner_id())
        if template is None:
            raise exceptions.NotFound("No such template.")
        return template

    @extend_schema(
        summary="Publish a new version from the agent",
        request=VersionCreateSerializer,
        responses={201: VersionSerializer},
    )
    @action(detail=True, methods=["post"])
    def versions(self, request: Request, slug: str | None = None) -> Response:
        serializer = VersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = self.get_object()
        agent_id = serializer.validated_data.get("agent") or template.source_agent_id
        if agent_id is not None:  # none: the service refuses it (the agent is gone)
            _check_publishable(request.user, agent_id)
        version = services.template_publish_version(
            template=template,
            changelog=serializer.validated_data["changelog"],
            agent_id=agent_id,
            actor=actor_for(request.user),
        )
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Create an agent from a template",
        description="The agent (with its app and key, shown only now) is created like any "
        "other: the plan's limits and the handle rules apply. It remembers the template and "
        "version, and offers the template's later versions as updates.",
        request=CloneSerializer,
        responses={201: AgentCreatedSerializer, 404: NO_TEMPLATE},
    )
    @action(detail=True, methods=["post"])
    def clone(self, request: Request, slug: str | None = None) -> Response:
        serializer = CloneSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        team_id = fields.pop("team", None)
        member_id = self._owner_id()
        # As `POST /api/v1/agents/`: with `team`, agent_create checks the member's role.
        agent, app_key = services.template_clone(
            template=self._readable(),
            owner_id=team_id or member_id,
            team_id=team_id,
            member_id=member_id,
            actor=actor_for(request.user),
            **fields,
        )
        agent.app_key = app_key  # type: ignore[attr-defined]
        response = Response(AgentCreatedSerializer(agent).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        summary="Report an abusive template to staff",
        request=ReportCreateSerializer,
        responses={201: ReportSerializer, 404: NO_TEMPLATE},
    )
    @action(detail=True, methods=["post"])
    def reports(self, request: Request, slug: str | None = None) -> Response:
        serializer = ReportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = services.report_create(
            template=self._readable(),
            reporter_id=self._owner_id(),
            reason=serializer.validated_data["reason"],
            actor=actor_for(request.user),
        )
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)


def _template_status(agent_id: Any) -> dict[str, Any]:
    """The agent's template, version, and what updating would change; 404 if it follows
    none its account (the caller's, or the agent's team) may still read."""
    link = selectors.link_of_agent(agent_id)
    agent = selectors.agent_to_snapshot(agent_id)
    if (
        link is None
        or agent is None
        or not selectors.template_is_readable_by(link.template, owner_id=agent.owner_id)
    ):
        raise exceptions.NotFound("This agent follows no template.")
    template = link.template
    latest = selectors.version_of(template.pk, template.latest_version)
    newer = link.version_number < template.latest_version and latest is not None
    expected = list(latest.snapshot.get("integrations", [])) if latest else []
    connected = set(selectors.providers_of(agent_id))
    return {
        "template": {column: getattr(template, column) for column in MARKETPLACE_COLUMNS},
        "version": link.version_number,
        "update_available": newer,
        "changes": update_preview(agent, link.cloned, latest.snapshot) if newer and latest else [],
        "newer_versions": list(
            selectors.versions_of(template.pk)
            .filter(number__gt=link.version_number)
            .values("number", "changelog", "created_at")
        ),
        "expected_integrations": expected,
        "missing_integrations": [p for p in expected if p not in connected],
    }


class AgentTemplateView(APIView):
    """The template an agent was cloned from: its owner's, or a team's agent for any member
    who may see it (`agent_role_for`)."""

    permission_classes = [IsOwner]

    @extend_schema(
        summary="The agent's template and its update",
        description="`update_available` when a newer version exists; `changes` previews "
        "what applying it would do (fields you edited since cloning are kept).",
        responses={200: AgentTemplateStatusSerializer, 404: NO_TEMPLATE},
    )
    def get(self, request: Request, agent_id: Any) -> Response:
        visible_agent_id(request.user, agent_id)
        return Response(AgentTemplateStatusSerializer(_template_status(agent_id)).data)


class AgentTemplateApplyView(APIView):
    permission_classes = [IsOwner]

    @extend_schema(
        summary="Apply the template's latest version to the agent",
        description="Fields you edited since cloning are kept unless named in `overwrite`.",
        request=ApplySerializer,
        responses={
            200: AppliedUpdateSerializer,
            404: NO_TEMPLATE,
            409: OpenApiResponse(description="template_up_to_date"),
        },
    )
    def post(self, request: Request, agent_id: Any) -> Response:
        visible_agent_id(request.user, agent_id, needs=Role.EDITOR)
        serializer = ApplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _, changes = services.template_update_apply(
            agent_id=agent_id,
            overwrite=serializer.validated_data["overwrite"],
            actor=actor_for(request.user),
        )
        link = selectors.link_of_agent(agent_id)
        assert link is not None
        return Response(
            AppliedUpdateSerializer({"version": link.version_number, "changes": changes}).data
        )
