"""Conversations and messages for support: read-only for every role (they are the
customers' data, written only by their apps through the API)."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet

from console.admin_base import ExactIdSearchAdmin, ReadOnlyAdmin
from conversations.models import AgentConversation, Message


@admin.register(AgentConversation)
class AgentConversationAdmin(ReadOnlyAdmin, ExactIdSearchAdmin):
    staff_resource = "conversation"
    list_display = ("id", "agent", "channel", "external_user_id", "status", "last_message_at")
    list_filter = ("channel", "status")
    search_fields = ("external_user_id",)  # shows the search box; see search_other
    search_help_text = "Exact conversation id, agent id, external user id or thread id."
    id_search_fields = ("pk", "agent_id")
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    # An agent's conversations, latest activity first: the (agent, last_message_at DESC, id
    # DESC) index serves it, also for the whole table.
    ordering = ("agent_id", "-last_message_at", "-id")

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        # The external user id is indexed; a thread id is looked for only if no user matched.
        by_user = queryset.filter(external_user_id=term)
        if by_user.exists():
            return by_user
        return queryset.filter(thread_id=term)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin, ExactIdSearchAdmin):
    staff_resource = "message"
    list_display = ("created_at", "conversation", "role", "agent")
    list_filter = ("role",)
    search_fields = ("conversation__id",)  # shows the search box
    search_help_text = "Exact conversation id or message id."
    id_search_fields = ("conversation_id", "pk")
    list_select_related = ("agent", "conversation")
    raw_id_fields = ("agent", "conversation")
    # A conversation's messages in order: the (conversation, created_at, id) index.
    ordering = ("conversation_id", "created_at", "id")
