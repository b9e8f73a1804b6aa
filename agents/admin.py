from django.contrib import admin

from a1zap.admin_widgets import CompactTextAdmin
from agents.models import A1Agent, App


@admin.register(A1Agent)
class A1AgentAdmin(CompactTextAdmin):
    list_display = ("handle", "name", "owner_id", "agent_type", "status", "created_at")
    list_filter = ("status", "agent_type")
    search_fields = ("=handle", "=owner_id", "name")
    list_select_related = ("app",)
    raw_id_fields = ("app",)
    readonly_fields = ("id", "created_at", "updated_at")
    ordering = ("-created_at",)


@admin.register(App)
class AppAdmin(CompactTextAdmin):
    list_display = ("id", "key_prefix", "status", "agent", "created_at")
    list_filter = ("status",)
    search_fields = ("=id", "=key_prefix")
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    readonly_fields = ("id", "key_prefix", "key_hash", "key_created_at", "created_at", "updated_at")
