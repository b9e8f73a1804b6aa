from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api_input import BoundedJSONField, StrictFieldsMixin
from integrations.models import AgentIntegration, IntegrationStatus, Provider
from integrations.providers import config_masked

CONFIG_HELP = (
    "The provider's settings. whatsapp: phone_number_id, access_token*, verify_token*; "
    "slack: bot_token* (xoxb-…), signing_secret*, channel_id (optional); discord: bot_token*, "
    "application_id, guild_id (optional); telegram: bot_token*; email: address, smtp_host, "
    "smtp_port (integer), smtp_username, smtp_password*; webhook: url* (https), "
    "signing_secret* (optional). Keys marked * are secrets: stored encrypted, never returned. "
    "Webhook URLs and SMTP hosts must be public: loopback, private, link-local and cloud "
    "metadata targets are refused."
)


class IntegrationSerializer(serializers.ModelSerializer[AgentIntegration]):
    """An integration as its owner sees it: secrets masked (`••••` and the last four)."""

    config = serializers.SerializerMethodField()

    class Meta:
        model = AgentIntegration
        fields = (
            "id", "agent", "provider", "status", "config", "created_at", "updated_at",
            "last_sync_at",
        )  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_config(self, integration: AgentIntegration) -> dict[str, Any]:
        return config_masked(integration.config)


class IntegrationCreateSerializer(StrictFieldsMixin, serializers.Serializer[AgentIntegration]):
    agent = serializers.UUIDField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    config = BoundedJSONField(require_object=True, help_text=CONFIG_HELP)


class IntegrationUpdateSerializer(StrictFieldsMixin, serializers.Serializer[AgentIntegration]):
    config = BoundedJSONField(
        require_object=True,
        required=False,
        help_text="Merged into the stored settings: a key left out keeps its value (so secrets "
        "need not be sent again), null removes an optional key.",
    )
    status = serializers.ChoiceField(
        choices=[IntegrationStatus.ACTIVE, IntegrationStatus.DISABLED], required=False
    )
