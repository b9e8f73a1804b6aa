"""Daily usage in the admin, read-only: rows are written by ingestion alone."""

from django.contrib import admin

from console.admin_base import ExactIdSearchAdmin, OwnerSearchAdmin, ReadOnlyAdmin
from usage.models import AgentUsage, UsageAlert


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


@admin.register(UsageAlert)
class UsageAlertAdmin(ReadOnlyAdmin, OwnerSearchAdmin):
    """Every usage alert, newest first, with when its webhook and email went out."""

    staff_resource = "usage_alert"
    list_display = ("user_id", "month", "kind", "percent", "message_count", "included_messages",
                    "created_at", "notified_at", "emailed_at")  # fmt: skip
    list_filter = ("kind", ("month", admin.DateFieldListFilter))
    search_fields = ("user_id",)
    search_help_text = "Exact owner id."
    owner_field = "user_id"
    ordering = ("-created_at", "-id")
    fields = list_display
    readonly_fields = fields
