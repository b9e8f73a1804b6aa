"""Daily usage in the admin, read-only: rows are written by ingestion alone."""

from django.contrib import admin

from console.admin_base import ExactIdSearchAdmin, ReadOnlyAdmin
from usage.models import AgentUsage


@admin.register(AgentUsage)
class AgentUsageAdmin(ReadOnlyAdmin, ExactIdSearchAdmin):
    staff_resource = "usage"
    list_display = (
        "date", "agent", "message_count", "api_calls", "compute_seconds", "storage_bytes",
        "estimated_cost",
    )  # fmt: skip
    # A date filter, not a date hierarchy: the hierarchy reads MIN/MAX over the whole table.
    list_filter = (("date", admin.DateFieldListFilter),)
    search_fields = ("agent__id",)  # shows the search box
    search_help_text = "Exact agent id."
    id_search_fields = ("agent_id",)
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    # An agent's days, newest first, read backwards along the (agent, date) index.
    ordering = ("-agent_id", "-date")
