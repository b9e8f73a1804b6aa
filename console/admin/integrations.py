"""Integrations in the admin: settings shown with secrets masked (never in clear), never
edited here as raw JSON (owners change them through the API, which validates them). Staff
with the admin role may disable or re-enable one, or remove it, through the services."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from audit.actors import Actor
from console.admin_base import ExactIdSearchAdmin, LargeTableAdmin, StaffPermissionsAdmin
from integrations import services
from integrations.models import AgentIntegration
from integrations.providers import config_masked


@admin.register(AgentIntegration)
class AgentIntegrationAdmin(StaffPermissionsAdmin, LargeTableAdmin, ExactIdSearchAdmin):
    staff_resource = "integration"
    list_display = ("provider", "agent", "status", "last_sync_at", "updated_at")
    list_filter = ("provider", "status")
    search_fields = ("agent__id",)  # shows the search box
    search_help_text = "Exact agent id or integration id."
    id_search_fields = ("agent_id", "pk")
    list_select_related = ("agent",)
    fields = (
        "id", "agent", "provider", "status", "settings", "created_at", "updated_at",
        "last_sync_at",
    )  # fmt: skip
    readonly_fields = (
        "id", "agent", "provider", "settings", "created_at", "updated_at", "last_sync_at",
    )  # fmt: skip
    ordering = ("agent_id", "provider")  # the unique (agent, provider) index

    @admin.display(description="settings (secrets masked)")
    def settings(self, integration: AgentIntegration) -> str:
        shown = config_masked(integration.config)
        if not shown:
            return "—"
        return format_html_join(
            "\n", "<div><code>{}</code>: {}</div>", sorted((k, str(v)) for k, v in shown.items())
        )

    def save_model(
        self, request: HttpRequest, obj: AgentIntegration, form: Any, change: bool
    ) -> None:
        if "status" in form.changed_data:
            services.integration_update(
                integration_id=obj.pk, status=obj.status, actor=Actor.staff(request.user)
            )

    def delete_model(self, request: HttpRequest, obj: AgentIntegration) -> None:
        services.integration_delete(integration_id=obj.pk, actor=Actor.staff(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AgentIntegration]) -> None:
        actor = Actor.staff(request.user)
        for integration in queryset:
            services.integration_delete(integration_id=integration.pk, actor=actor)
