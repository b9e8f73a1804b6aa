from django.contrib import admin

from a1zap.admin_widgets import CompactTextAdmin
from integrations.models import AgentIntegration


@admin.register(AgentIntegration)
class AgentIntegrationAdmin(CompactTextAdmin):
    list_display = ("provider", "agent", "status", "last_sync_at", "updated_at")
    list_filter = ("provider", "status")
    list_select_related = ("agent",)
    raw_id_fields = ("agent",)
    # The config holds ciphertext of secrets; it is shown masked once the integrations
    # issue lands, and never edited as raw JSON here.
    exclude = ("config",)
    readonly_fields = ("id", "created_at", "updated_at")
