from typing import Any

from rest_framework import serializers

from core.api_input import StrictFieldsMixin
from notifications.events import EVENT_TYPES
from notifications.models import (
    MAX_USAGE_THRESHOLDS,
    MIN_USAGE_THRESHOLD,
    WebhookAttempt,
    WebhookEndpoint,
)

EVENT_TYPES_HELP = (
    "Event types to receive; empty (the default) means all of them except the opt-in "
    "`message.created`, which an endpoint receives only when it names it."
)


class EndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    """An endpoint as its owner sees it (never its secret)."""

    class Meta:
        model = WebhookEndpoint
        fields: tuple[str, ...] = (
            "id", "owner_id", "url", "description", "event_types", "enabled",
            "previous_secret_expires_at", "failing_since", "disabled_at",
            "created_at", "updated_at",
        )  # fmt: skip
        read_only_fields: tuple[str, ...] = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    """An endpoint with its signing secret: only when it is created or its secret rotated."""

    secret = serializers.CharField(
        read_only=True, help_text="The Standard Webhooks signing secret (whsec_…), shown once."
    )

    class Meta(EndpointSerializer.Meta):
        fields: tuple[str, ...] = (*EndpointSerializer.Meta.fields, "secret")
        read_only_fields: tuple[str, ...] = fields


class EndpointCreateSerializer(StrictFieldsMixin, serializers.Serializer[WebhookEndpoint]):
    url = serializers.URLField(max_length=2000, help_text="An https:// URL on a public host.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES),
        max_length=len(EVENT_TYPES),
        required=False,
        help_text=EVENT_TYPES_HELP,
    )
    enabled = serializers.BooleanField(required=False)


class EndpointUpdateSerializer(EndpointCreateSerializer):
    url = serializers.URLField(max_length=2000, required=False)


class PingSerializer(serializers.Serializer[None]):
    event_id = serializers.CharField(read_only=True)


class ReplaySerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    """Exactly one of `event_id` and `since`."""

    event_id = serializers.CharField(required=False, max_length=100)
    since = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("event_id" in attrs) == ("since" in attrs):
            raise serializers.ValidationError(
                {"non_field_errors": ["Give exactly one of event_id and since."]}
            )
        return attrs


class ReplayedSerializer(serializers.Serializer[None]):
    replayed = serializers.IntegerField(read_only=True, help_text="Deliveries queued.")


class AttemptSerializer(serializers.ModelSerializer[WebhookAttempt]):
    """One delivery attempt, as the owner reads it in the log."""

    event_id = serializers.CharField(source="delivery.event_id", read_only=True)
    event_type = serializers.CharField(source="delivery.event.type", read_only=True)
    delivery_status = serializers.CharField(source="delivery.status", read_only=True)
    created_at = serializers.DateTimeField(source="attempted_at", read_only=True)

    class Meta:
        model = WebhookAttempt
        fields = (
            "id", "event_id", "event_type", "delivery_status", "created_at", "status_code",
            "latency_ms", "succeeded", "response_body", "error",
        )  # fmt: skip
        read_only_fields = fields


class NotificationSettingsSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    """What an owner is told about their usage."""

    usage_email_enabled = serializers.BooleanField(
        required=False, help_text="Email the owner when a usage threshold is reached."
    )
    usage_thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=MIN_USAGE_THRESHOLD, max_value=100),
        max_length=MAX_USAGE_THRESHOLDS,
        allow_empty=True,
        required=False,
        help_text=f"Percentages of the month's included messages, {MIN_USAGE_THRESHOLD} to "
        f"100, at most {MAX_USAGE_THRESHOLDS} (default 50, 80, 100; empty: no threshold "
        "alerts). A hard cap's refusal is always told.",
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {
            "usage_email_enabled": instance.usage_email_enabled,
            "usage_thresholds": sorted(instance.usage_thresholds),
        }
