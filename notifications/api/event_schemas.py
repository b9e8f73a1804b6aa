"""The body of every event, as the OpenAPI schema's `webhooks` documents it (OpenAPI 3.1).

Each event is the same envelope (`id`, `type`, `version`, `timestamp`) around its own `data`;
the shapes here describe what the emitting services write (`agent_event_data`,
`conversation_event_data`, `message_event_data`, `subscription_event_data`,
`payment_failed_event_data`, `usage_alert_event_data`), and tests/test_webhook_events.py
checks each body against them.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, OpenApiWebhook, extend_schema
from rest_framework import serializers

from notifications.events import EVENT_VERSION


class AgentEventData(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    owner_id = serializers.CharField()
    name = serializers.CharField()
    handle = serializers.CharField()
    agent_type = serializers.CharField()
    status = serializers.CharField()


class ConversationEventData(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    agent_id = serializers.UUIDField()
    channel = serializers.CharField()
    external_user_id = serializers.CharField(allow_null=True)
    thread_id = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    started_at = serializers.DateTimeField()


class MessageEventData(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    agent_id = serializers.UUIDField()
    conversation_id = serializers.UUIDField()
    role = serializers.CharField()
    content = serializers.CharField()
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()


class UsageThresholdEventData(serializers.Serializer[Any]):
    owner_id = serializers.CharField()
    month = serializers.DateField(help_text="The first day of the month (UTC).")
    kind = serializers.ChoiceField(
        choices=["threshold", "hard_cap"],
        help_text="`threshold`: a share of the included messages was reached; `hard_cap`: a "
        "message was refused because the month's limit is reached.",
    )
    percent = serializers.IntegerField(help_text="The threshold reached (100 for the hard cap).")
    messages = serializers.IntegerField(help_text="Messages counted this month when it fired.")
    included_messages = serializers.IntegerField()


class SubscriptionEventData(serializers.Serializer[Any]):
    owner_id = serializers.CharField()
    plan_id = serializers.CharField()
    status = serializers.CharField(allow_null=True)
    max_personal_agents = serializers.IntegerField()
    max_work_agents = serializers.IntegerField()
    max_total_agents = serializers.IntegerField()
    current_period_start = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    past_due_since = serializers.DateTimeField(allow_null=True)
    changed = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField(help_text="What changed it, e.g. `subscription.updated`.")


class PaymentFailedEventData(serializers.Serializer[Any]):
    owner_id = serializers.CharField()
    invoice_id = serializers.CharField(allow_null=True)
    amount_due = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    attempt_count = serializers.IntegerField(allow_null=True)
    next_payment_attempt = serializers.DateTimeField(allow_null=True)
    hosted_invoice_url = serializers.URLField(allow_null=True)


class IntegrationErrorEventData(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    agent_id = serializers.UUIDField()
    provider = serializers.CharField()
    status = serializers.CharField()
    previous_status = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField()


class PingEventData(serializers.Serializer[Any]):
    endpoint_id = serializers.UUIDField()


# The serializer of each event type's `data`.
EVENT_DATA: dict[str, type[serializers.Serializer[Any]]] = {
    **{
        f"agent.{what}": AgentEventData
        for what in ("created", "updated", "paused", "resumed", "archived", "deleted")
    },
    "conversation.created": ConversationEventData,
    "message.created": MessageEventData,
    "usage.threshold_reached": UsageThresholdEventData,
    "subscription.updated": SubscriptionEventData,
    "invoice.payment_failed": PaymentFailedEventData,
    "integration.error": IntegrationErrorEventData,
    "ping": PingEventData,
}


def _envelope(event_type: str, data: type[serializers.Serializer[Any]]) -> Any:
    name = "".join(part.title() for part in event_type.replace(".", "_").split("_")) + "Event"
    return type(
        name,
        (serializers.Serializer,),
        {
            "id": serializers.CharField(help_text="The event id: the `webhook-id` header."),
            "type": serializers.ChoiceField(choices=[event_type]),
            "version": serializers.ChoiceField(choices=[EVENT_VERSION]),
            "timestamp": serializers.DateTimeField(),
            "data": data(),
            "__doc__": f"The body of a `{event_type}` event.",
        },
    )


# drf-spectacular's SPECTACULAR_SETTINGS["WEBHOOKS"] names each of these.
EVENT_WEBHOOKS = [
    OpenApiWebhook(
        name=event_type,
        decorator=extend_schema(
            summary=f"The `{event_type}` event",
            description="Signed as Standard Webhooks says (`webhook-id`, `webhook-timestamp`, "
            "`webhook-signature`); answer 2xx within 10 s.",
            request=_envelope(event_type, data),
            responses={200: OpenApiResponse(description="Received.")},
        ),
    )
    for event_type, data in EVENT_DATA.items()
]
