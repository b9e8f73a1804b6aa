"""Daily usage in the admin, read-only: rows are written by ingestion alone."""

import uuid

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from console.admin_base import LargeTableAdmin, StaffPermissionsAdmin
from usage.models import AgentUsage


@admin.register(AgentUsage)
class AgentUsageAdmin(StaffPermissionsAdmin, LargeTableAdmin):
    staff_resource = "usage"
    list_display = (
        "date", "agent", "message_count", "api_calls", "compute_seconds", "storage_bytes",
        "estimated_cost",
    )  # fmt: skip
    # A date filter, not a date hierarchy: the hierarchy reads MIN/MAX over the whole table.
    list_filter = (("date", admin.DateFieldListFilter),)
    search_fields = ("agent__id",)  # shows the search box; see get_search_results
    search_help_text = "Exact agent id."
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    # An agent's days, newest first, read backwards along the (agent, date) index.
    ordering = ("-agent_id", "-date")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AgentUsage], search_term: str
    ) -> tuple[QuerySet[AgentUsage], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(agent_id=uuid.UUID(term)), False
        except ValueError:
            return queryset.none(), False
