"""The webhooks API: owners register endpoints and read every delivery attempt."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from core.permissions import IsOwner
from core.principals import owner_of
from notifications import selectors, services
from notifications.api.serializers import (
    AttemptSerializer,
    EndpointCreateSerializer,
    EndpointSerializer,
    EndpointUpdateSerializer,
    EndpointWithSecretSerializer,
    NotificationSettingsSerializer,
    PingSerializer,
    ReplayedSerializer,
    ReplaySerializer,
)
from notifications.api.throttling import EndpointActionThrottle
from notifications.delivery import REPLAY_LIMIT, deliveries_replay
from notifications.events import event_ping
from notifications.models import WebhookAttempt, WebhookEndpoint
from teams.accounts import account_id_for
from teams.roles import Role

# The actions that make us send are limited per endpoint too.
ACTION_THROTTLES = [*api_settings.DEFAULT_THROTTLE_CLASSES, EndpointActionThrottle]
UUID_REGEX = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    endpoint.secret = secret
    return dict(EndpointWithSecretSerializer(endpoint).data)


@extend_schema_view(
    list=extend_schema(
        summary="List your webhook endpoints", responses=EndpointSerializer(many=True)
    ),
    retrieve=extend_schema(summary="Read one webhook endpoint", responses=EndpointSerializer),
    create=extend_schema(
        summary="Register a webhook endpoint, yours or a team's",
        description="At most 5 per owner; https:// on a public host. The signing secret is in "
        "this answer only. With `?team=<id>` (the team's admins) the endpoint is the team's "
        "and receives its agents' events.",
        parameters=[OpenApiParameter("team", str, description="A team you are an admin of.")],
        request=EndpointCreateSerializer,
        responses={201: EndpointWithSecretSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a webhook endpoint",
        request=EndpointUpdateSerializer,
        responses=EndpointSerializer,
    ),
    destroy=extend_schema(summary="Remove a webhook endpoint and its delivery log"),
)
class EndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[WebhookEndpoint],
):
    """An owner's webhook endpoints, and those of the teams they are an admin of (`owner_id`
    tells them apart). Another owner's is 404 on every route."""

    serializer_class = EndpointSerializer
    permission_classes = [IsOwner]
    lookup_value_regex = UUID_REGEX
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return selectors.endpoint_queryset_for(self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = EndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        owner = owner_of(request.user)
        assert owner is not None  # IsOwner
        # With ?team=, the team's endpoint: it receives the events of the team's agents.
        account_id = account_id_for(
            user_id=owner.id, team_id=request.query_params.get("team"), needs=Role.ADMIN
        )
        endpoint, secret = services.endpoint_create(
            owner_id=account_id, **serializer.validated_data
        )
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint = self.get_object()
        serializer = EndpointUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint_id=endpoint.pk, **serializer.validated_data)
        return Response(EndpointSerializer(endpoint).data)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        services.endpoint_delete(endpoint_id=instance.pk)

    @extend_schema(
        summary="Give the endpoint a new signing secret",
        description="The new secret is in this answer only. The old one keeps signing beside "
        "it (two signatures in `webhook-signature`) until `previous_secret_expires_at`.",
        request=None,
        responses=EndpointWithSecretSerializer,
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        endpoint, secret = services.endpoint_rotate_secret(endpoint_id=self.get_object().pk)
        return Response(_with_secret(endpoint, secret))

    @extend_schema(
        summary="Send a test `ping` event to the endpoint",
        request=None,
        responses={202: PingSerializer},
    )
    @action(detail=True, methods=["post"], throttle_classes=ACTION_THROTTLES)
    def ping(self, request: Request, pk: str | None = None) -> Response:
        event = event_ping(endpoint=self.get_object())
        return Response({"event_id": event.id}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Send events to the endpoint again",
        description="One event (`event_id`: any of your events, also one the endpoint never "
        "received) or every event since a time (`since`: the events of the types the endpoint "
        f"subscribes to, oldest first, at most {REPLAY_LIMIT}). Each is delivered afresh, with "
        "the same `webhook-id`, so receivers that dedupe are safe.",
        request=ReplaySerializer,
        responses={202: ReplayedSerializer},
    )
    @action(detail=True, methods=["post"], throttle_classes=ACTION_THROTTLES)
    def replay(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()
        serializer = ReplaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        replayed = deliveries_replay(endpoint=endpoint, **serializer.validated_data)
        if not replayed and "event_id" in serializer.validated_data:
            raise exceptions.NotFound("No such event of yours.")
        return Response({"replayed": replayed}, status=status.HTTP_202_ACCEPTED)


class AttemptPagination(CursorPagination):
    ordering = ("-attempted_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


@extend_schema_view(
    list=extend_schema(
        summary="List every delivery attempt to one of your endpoints, newest first",
        parameters=[
            OpenApiParameter(
                "endpoint", OpenApiTypes.UUID, required=True, description="The endpoint."
            )
        ],
    )
)
class DeliveryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[WebhookAttempt]):
    serializer_class = AttemptSerializer
    permission_classes = [IsOwner]
    pagination_class = AttemptPagination

    def get_queryset(self) -> QuerySet[WebhookAttempt]:
        if getattr(self, "swagger_fake_view", False):
            return WebhookAttempt.objects.none()
        raw = self.request.query_params.get("endpoint")
        if raw is None:
            raise exceptions.ValidationError({"endpoint": ["This query parameter is required."]})
        endpoint = selectors.endpoint_queryset_for(self.request.user).filter(pk=_uuid(raw)).first()
        if endpoint is None:
            raise exceptions.NotFound("No such webhook endpoint.")
        return selectors.attempt_queryset_for(self.request.user, endpoint_id=endpoint.pk)


def _uuid(raw: str) -> Any:
    import uuid

    try:
        return uuid.UUID(raw)
    except ValueError:
        raise exceptions.ValidationError({"endpoint": ["Must be a valid UUID."]}) from None


SETTINGS_TEAM = OpenApiParameter(
    "team", str, description="A team you are an admin of: its settings instead of yours."
)


def _settings_account(request: Request) -> str:
    """The caller's account, or with `?team=` a team they are an admin of."""
    owner = owner_of(request.user)
    assert owner is not None  # IsOwner
    team_id = request.query_params.get("team")
    return account_id_for(user_id=owner.id, team_id=team_id, needs=Role.ADMIN)


class NotificationSettingsView(APIView):
    """What the owner is told about their usage: emails on or off, and the thresholds."""

    permission_classes = [IsOwner]

    @extend_schema(
        summary="Read your notification settings",
        parameters=[SETTINGS_TEAM],
        responses=NotificationSettingsSerializer,
    )
    def get(self, request: Request) -> Response:
        choice = services.notification_settings_for(_settings_account(request))
        return Response(NotificationSettingsSerializer(choice).data)

    @extend_schema(
        summary="Change your notification settings",
        parameters=[SETTINGS_TEAM],
        request=NotificationSettingsSerializer,
        responses=NotificationSettingsSerializer,
    )
    def patch(self, request: Request) -> Response:
        serializer = NotificationSettingsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        choice = services.notification_settings_update(
            owner_id=_settings_account(request), **serializer.validated_data
        )
        return Response(NotificationSettingsSerializer(choice).data)
