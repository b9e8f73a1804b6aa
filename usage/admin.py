from django.contrib import admin

from a1zap.admin_widgets import CompactTextAdmin
from usage.models import AgentUsage


@admin.register(AgentUsage)
class AgentUsageAdmin(CompactTextAdmin):
    list_display = (
        "date",
        "agent",
        "message_count",
        "api_calls",
        "compute_seconds",
        "storage_bytes",
        "estimated_cost",
    )
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    date_hierarchy = "date"
    ordering = ("-date",)
    readonly_fields = ("id", "created_at")
