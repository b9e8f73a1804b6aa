from django.contrib import admin

from a1zap.admin_widgets import CompactTextAdmin
from conversations.models import AgentConversation, Message


@admin.register(AgentConversation)
class AgentConversationAdmin(CompactTextAdmin):
    list_display = ("id", "agent", "channel", "external_user_id", "status", "last_message_at")
    list_filter = ("channel", "status")
    search_fields = ("=external_user_id", "=thread_id")
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    readonly_fields = ("id", "started_at", "last_message_at")
    ordering = ("-last_message_at",)


@admin.register(Message)
class MessageAdmin(CompactTextAdmin):
    list_display = ("created_at", "conversation", "role", "agent")
    list_filter = ("role",)
    list_select_related = ("agent", "conversation")
    raw_id_fields = ("agent", "conversation")
    readonly_fields = ("id", "client_message_id", "created_at")
    ordering = ("-created_at",)
