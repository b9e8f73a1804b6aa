"""The floors the API's hot lists are measured against, served by the bench's server only.

Two ways an ordinary Django project would serve the same rows, without our authentication,
throttle or permissions (the rows are named by query parameter instead):

- the plain Django floor: the rows read with `.values()` and answered with `JsonResponse`;
- the plain DRF list: a `ListAPIView` with a `ModelSerializer` of the same fields and a
  cursor pagination, no authentication, no permission, no throttle, no filter backend.

They live in `bench/` only: `bench.urls` adds them to the product's routes and
`bench.settings` points ROOT_URLCONF at it; the product's own URLs never include them.
"""

import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from rest_framework import generics, permissions, serializers
from rest_framework.pagination import CursorPagination

from agents.models import A1Agent, App
from conversations.models import Message

AGENT_FIELDS = (
    "id", "owner_id", "name", "handle", "description", "avatar_url", "email", "phone_number",
    "whatsapp_number", "base_website", "custom_website", "onboarding_data", "settings",
    "status", "agent_type", "created_at", "updated_at",
)  # fmt: skip
APP_FIELDS = ("id", "status", "key_prefix", "key_created_at")
MESSAGE_FIELDS = (
    "id", "conversation", "agent", "role", "content", "metadata", "client_message_id",
    "created_at",
)  # fmt: skip
PAGE_SIZE = 50


# --- the plain Django floor -------------------------------------------------------------------


def django_agents(request: HttpRequest) -> JsonResponse:
    """An owner's agents (`?owner=`), newest first, with their app: `.values()`, JsonResponse."""
    app_columns = [f"app__{name}" for name in APP_FIELDS]
    rows = (
        A1Agent.objects.filter(owner_id=request.GET.get("owner", ""))
        .order_by("-created_at", "-id")
        .values(*AGENT_FIELDS, *app_columns)[:PAGE_SIZE]
    )
    results = []
    for row in rows:
        row["app"] = {name: row.pop(f"app__{name}") for name in APP_FIELDS}
        results.append(row)
    return JsonResponse({"next": None, "previous": None, "results": results})


def django_messages(request: HttpRequest, conversation_id: uuid.UUID) -> JsonResponse:
    """The first page of a conversation's messages, oldest first: `.values()`, JsonResponse."""
    rows = (
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("created_at", "id")
        .values(*(f"{name}_id" if name in ("conversation", "agent") else name
                  for name in MESSAGE_FIELDS))[:PAGE_SIZE]
    )  # fmt: skip
    results = [
        {"conversation": row.pop("conversation_id"), "agent": row.pop("agent_id"), **row}
        for row in rows
    ]
    return JsonResponse({"next": None, "previous": None, "results": results})


# --- the plain DRF list -----------------------------------------------------------------------


class AppFields(serializers.ModelSerializer[App]):
    class Meta:
        model = App
        fields = APP_FIELDS


class AgentFields(serializers.ModelSerializer[A1Agent]):
    app = AppFields(read_only=True)

    class Meta:
        model = A1Agent
        fields = (*AGENT_FIELDS, "app")


class MessageFields(serializers.ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = MESSAGE_FIELDS


class NewestFirst(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = PAGE_SIZE


class OldestFirst(CursorPagination):
    ordering = ("created_at", "id")
    page_size = PAGE_SIZE


class PlainListView(generics.ListAPIView[Any]):
    """A ListAPIView as an ordinary DRF project writes it, minus who may see what."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list[Any] = []
    filter_backends: list[Any] = []


class DrfAgents(PlainListView):
    serializer_class = AgentFields
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[A1Agent]:
        owner = self.request.query_params.get("owner", "")
        return A1Agent.objects.select_related("app").filter(owner_id=owner)


class DrfMessages(PlainListView):
    serializer_class = MessageFields
    pagination_class = OldestFirst

    def get_queryset(self) -> QuerySet[Message]:
        return Message.objects.filter(conversation_id=self.kwargs["conversation_id"])
