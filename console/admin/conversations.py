"""Conversations and messages for support: read-only for every role (they are the
customers' data, written only by their apps through the API)."""

import uuid

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from console.admin_base import LargeTableAdmin, StaffPermissionsAdmin
from conversations.models import AgentConversation, Message


@admin.register(AgentConversation)
class AgentConversationAdmin(StaffPermissionsAdmin, LargeTableAdmin):
    staff_resource = "conversation"  # read-only: the map gives staff only `view`
    list_display = ("id", "agent", "channel", "external_user_id", "status", "last_message_at")
    list_filter = ("channel", "status")
    search_fields = ("external_user_id",)  # shows the search box; see get_search_results
    search_help_text = "Exact conversation id, agent id, external user id or thread id."
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    # An agent's conversations, latest activity first: the (agent, last_message_at DESC, id
    # DESC) index serves it, also for the whole table.
    ordering = ("agent_id", "-last_message_at", "-id")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AgentConversation], search_term: str
    ) -> tuple[QuerySet[AgentConversation], bool]:
        # Exact and case-sensitive, as the ids are: Django's `=field` compares UPPER()
        # values, which no index serves.
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            as_uuid = uuid.UUID(term)
        except ValueError:
            pass
        else:
            return queryset.filter(Q(pk=as_uuid) | Q(agent_id=as_uuid)), False
        # The external user id is indexed; a thread id is looked for only if no user matched.
        by_user = queryset.filter(external_user_id=term)
        if by_user.exists():
            return by_user, False
        return queryset.filter(thread_id=term), False


@admin.register(Message)
class MessageAdmin(StaffPermissionsAdmin, LargeTableAdmin):
    staff_resource = "message"  # read-only: the map gives staff only `view`
    list_display = ("created_at", "conversation", "role", "agent")
    list_filter = ("role",)
    search_fields = ("conversation__id",)  # shows the search box; see get_search_results
    search_help_text = "Exact conversation id or message id."
    list_select_related = ("agent", "conversation")
    raw_id_fields = ("agent", "conversation")
    # A conversation's messages in order: the (conversation, created_at, id) index.
    ordering = ("conversation_id", "created_at", "id")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            as_uuid = uuid.UUID(term)
        except ValueError:
            return queryset.none(), False
        return queryset.filter(Q(conversation_id=as_uuid) | Q(pk=as_uuid)), False
