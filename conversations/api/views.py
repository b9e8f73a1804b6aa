"""The conversations API: apps open conversations and post messages; owners read them.

Every route first finds the conversation among those the caller may see (another owner's,
or another agent's for an app, is 404), then checks what the caller may do with it (403).
"""

import csv
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api.views import UUID_PATH_REGEX
from agents.api.visibility import visible_agent_id
from conversations import selectors, services
from conversations.api.serializers import (
    ConversationCreateSerializer,
    ConversationSerializer,
    ConversationUpdateSerializer,
    ExportQuerySerializer,
    MessageCreateSerializer,
    MessageSerializer,
    message_list_item,
)
from conversations.models import AgentConversation, Channel, ConversationStatus, Message
from core.permissions import IsApp, IsOwnerAppOrStaff
from core.principals import app_of
from teams.roles import Role

EXPORT_CHUNK_ROWS = 2000
EXPORT_BUFFER_BYTES = 64 * 1024
EXPORT_COLUMNS = (
    "id", "conversation", "role", "content", "metadata", "client_message_id", "created_at",
)  # fmt: skip
EXPORT_MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
# A spreadsheet runs a cell that starts with one of these as a formula.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ConversationCursorPagination(CursorPagination):
    """Most recent activity first; `?page_size=` up to 200."""

    ordering = ("-last_message_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class OldestFirstCursorPagination(CursorPagination):
    """Oldest first, as a conversation is read; `?page_size=` up to 200."""

    ordering = ("created_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ConversationFilter(filters.FilterSet):
    channel = filters.ChoiceFilter(choices=Channel.choices)
    status = filters.ChoiceFilter(choices=ConversationStatus.choices)
    external_user_id = filters.CharFilter()
    since = filters.IsoDateTimeFilter(
        field_name="last_message_at", lookup_expr="gte", label="Last message at or after"
    )
    until = filters.IsoDateTimeFilter(
        field_name="last_message_at", lookup_expr="lt", label="Last message before"
    )

    class Meta:
        model = AgentConversation
        fields = ("channel", "status", "external_user_id", "since", "until")


def _agent_id_param(request: Request) -> uuid.UUID:
    """The `?agent=` of a list, which must be an agent the caller may see (else 404).

    An app's list defaults to its own agent.
    """
    app = app_of(request.user)
    raw = request.query_params.get("agent")
    if raw is None:
        if app is None:
            raise exceptions.ValidationError({"agent": ["This query parameter is required."]})
        return app.agent_id
    return visible_agent_id(request.user, raw, field="agent")


AGENT_PARAMETER = OpenApiParameter(
    "agent",
    OpenApiTypes.UUID,
    description="The agent whose conversations to list: required for owners and staff; "
    "an app key lists its own agent's.",
)


@extend_schema_view(
    list=extend_schema(
        summary="List an agent's conversations, most recent activity first",
        parameters=[AGENT_PARAMETER],
        responses=ConversationSerializer(many=True),
    ),
    retrieve=extend_schema(summary="Read one conversation", responses=ConversationSerializer),
    create=extend_schema(
        summary="Open a conversation (app key)",
        description="With a `thread_id`, a conversation already open for the same agent, "
        "channel and thread is returned with 200 instead of a new one with 201.",
        request=ConversationCreateSerializer,
        responses={200: ConversationSerializer, 201: ConversationSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a conversation's metadata or external user id",
        request=ConversationUpdateSerializer,
        responses=ConversationSerializer,
    ),
)
class ConversationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[AgentConversation],
):
    """Conversations of an agent. Apps open them; owners, staff and the app read them."""

    serializer_class = ConversationSerializer
    pagination_class = ConversationCursorPagination
    filterset_class = ConversationFilter
    lookup_value_regex = UUID_PATH_REGEX
    http_method_names = ["get", "post", "patch", "head", "options"]
    # Staff read; changing and archiving are the owner's and the app's (the map names none).
    permission_classes = [IsOwnerAppOrStaff]
    staff_resource = "conversation"

    def get_queryset(self) -> QuerySet[AgentConversation]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return AgentConversation.objects.none()
        if self.action == "list":
            return selectors.conversations_of_agent(_agent_id_param(self.request))
        return selectors.conversation_queryset_for(self.request.user)

    def filter_queryset(self, queryset: Any) -> Any:
        # The list's filters must not turn a lookup by id into a 404.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_permissions(self) -> Any:
        if self.action == "create":
            return [IsApp()]
        return super().get_permissions()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        app = app_of(request.user)
        assert app is not None  # IsApp
        serializer = ConversationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        agent_id = visible_agent_id(request.user, fields.pop("agent", app.agent_id))
        conversation, created = services.conversation_open(agent_id=agent_id, **fields)
        return Response(
            ConversationSerializer(conversation).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    def _changeable(self) -> AgentConversation:
        """The conversation, if the caller may change it (the editor role in a team)."""
        conversation = self.get_object()
        visible_agent_id(self.request.user, conversation.agent_id, needs=Role.EDITOR)
        return conversation

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversation = self._changeable()
        serializer = ConversationUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        conversation = services.conversation_update(
            conversation_id=conversation.id, **serializer.validated_data
        )
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        summary="Archive a conversation",
        description="It then takes no more messages (409 `conversation_archived`). "
        "Archiving an archived conversation changes nothing.",
        request=None,
        responses=ConversationSerializer,
    )
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        conversation = services.conversation_archive(conversation_id=self._changeable().id)
        return Response(ConversationSerializer(conversation).data)


def _visible_conversation(request: Request, conversation_id: uuid.UUID) -> AgentConversation:
    return get_object_or_404(selectors.conversation_queryset_for(request.user), pk=conversation_id)


@extend_schema_view(
    get=extend_schema(
        summary="Read a conversation's messages, oldest first",
        responses=MessageSerializer(many=True),
    ),
    post=extend_schema(
        summary="Post a message (app key)",
        description="Counts one message toward the agent's usage. A `client_message_id` "
        "already stored in this conversation returns the stored message with 200 and is not "
        "counted again.",
        request=MessageCreateSerializer,
        responses={200: MessageSerializer, 201: MessageSerializer},
    ),
)
class ConversationMessagesView(generics.GenericAPIView[Message]):
    """A conversation's messages: the app posts them; the owner, staff and the app read them."""

    queryset = Message.objects.none()  # for the schema; reads go through the selectors
    serializer_class = MessageSerializer
    pagination_class = OldestFirstCursorPagination
    filter_backends: list[Any] = []
    permission_classes = [IsOwnerAppOrStaff]
    staff_resource = "message"

    def get(self, request: Request, conversation_id: uuid.UUID) -> Response:
        # One hand-written SELECT, paged by DRF's cursor (core.sql_rows), that also checks
        # the caller may see the conversation; only an empty page needs asking which it is.
        rows: Any = selectors.message_rows_for(request.user, conversation_id)
        page: Any = self.paginate_queryset(rows)
        assert page is not None  # the page is always paginated
        if not page and not selectors.conversation_is_visible_to(request.user, conversation_id):
            raise Http404
        zone = timezone.get_current_timezone()
        return self.get_paginated_response([message_list_item(row, zone) for row in page])

    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        conversation = _visible_conversation(request, conversation_id)
        if app_of(request.user) is None:
            raise exceptions.PermissionDenied("Only the agent's app may post messages.")
        serializer = MessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message, created = services.message_post(
            conversation=conversation, **serializer.validated_data
        )
        return Response(
            MessageSerializer(message).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class JSONWhateverTheFormat(DefaultContentNegotiation):
    """Render this view's own answers (errors) as JSON: its `?format=` names the export's
    file type, not a renderer, so DRF must not turn an unknown renderer into a 404."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def _timestamp(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _spreadsheet_safe(value: str | None) -> str:
    if value and value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value or ""


class _Line:
    """A file-like object whose write() returns the line, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def _jsonl_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    for message_id, conversation_id, role, content, metadata, client_id, created_at in rows:
        line = {
            "id": message_id,
            "conversation": conversation_id,
            "role": role,
            "content": content,
            "metadata": metadata,
            "client_message_id": client_id,
            "created_at": _timestamp(created_at),
        }
        yield json.dumps(line, ensure_ascii=False, cls=DjangoJSONEncoder) + "\n"


def _csv_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_COLUMNS)
    for message_id, conversation_id, role, content, metadata, client_id, created_at in rows:
        yield writer.writerow(
            [
                message_id,
                conversation_id,
                role,
                _spreadsheet_safe(content),
                json.dumps(metadata if metadata is not None else {}, ensure_ascii=False),
                _spreadsheet_safe(client_id),
                _timestamp(created_at),
            ]
        )


def _buffered(lines: Iterator[str]) -> Iterator[bytes]:
    """Join lines into chunks of about 64 KiB: one write per chunk, not per message."""
    buffer: list[bytes] = []
    size = 0
    for line in lines:
        encoded = line.encode("utf-8")
        buffer.append(encoded)
        size += len(encoded)
        if size >= EXPORT_BUFFER_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


class ConversationExportView(APIView):
    """One conversation's messages as a JSON Lines or CSV file, oldest first, streamed."""

    content_negotiation_class = JSONWhateverTheFormat
    # An app passes here so that another agent's conversation is 404 before its own is 403.
    permission_classes = [IsOwnerAppOrStaff]
    staff_resource = "message"

    @extend_schema(
        summary="Export a conversation's messages (owner or staff)",
        description="Streams every message, oldest first, as a file download. CSV cells "
        "that a spreadsheet would run as a formula (starting with =, +, -, @) get a leading "
        "apostrophe; JSON Lines holds the content unchanged.",
        parameters=[
            OpenApiParameter(
                "format", str, enum=["jsonl", "csv"], required=True, description="File type."
            )
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="One JSON object per message and line."
            ),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="A header row, then one row per message."
            ),
        },
    )
    def get(self, request: Request, conversation_id: uuid.UUID) -> StreamingHttpResponse:
        conversation = _visible_conversation(request, conversation_id)
        if app_of(request.user) is not None:
            raise exceptions.PermissionDenied("Only the agent's owner or staff may export.")
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        file_type = query.validated_data["format"]

        # A server-side cursor: memory stays constant whatever the conversation's length.
        rows = (
            selectors.messages_of_conversation(conversation.id)
            .values_list(*EXPORT_COLUMNS)
            .iterator(chunk_size=EXPORT_CHUNK_ROWS)
        )
        lines = _jsonl_lines(rows) if file_type == "jsonl" else _csv_lines(rows)
        response = StreamingHttpResponse(
            _buffered(lines), content_type=EXPORT_MEDIA_TYPES[file_type]
        )
        response["Content-Disposition"] = (
            f'attachment; filename="conversation-{conversation.id}.{file_type}"'
        )
        response["Cache-Control"] = "no-store"
        return response
