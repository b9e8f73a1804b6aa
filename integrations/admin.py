from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join

from a1zap.admin_widgets import CompactTextAdmin
from integrations.models import AgentIntegration
from integrations.providers import config_masked


@admin.register(AgentIntegration)
class AgentIntegrationAdmin(CompactTextAdmin):
    """Integrations for support: settings shown with secrets masked (never in clear), and never
    edited here as raw JSON (owners change them through the API, which validates them)."""

    list_display = ("provider", "agent", "status", "last_sync_at", "updated_at")
    list_filter = ("provider", "status")
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    exclude = ("config",)
    readonly_fields = (
        "id", "agent", "provider", "settings", "created_at", "updated_at", "last_sync_at",
    )  # fmt: skip

    @admin.display(description="settings (secrets masked)")
    def settings(self, integration: AgentIntegration) -> str:
        shown = config_masked(integration.config)
        if not shown:
            return "—"
        return format_html_join(
            "\n", "<div><code>{}</code>: {}</div>", sorted((k, str(v)) for k, v in shown.items())
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A provider needs validated, encrypted settings, which only the API writes.
        return False
