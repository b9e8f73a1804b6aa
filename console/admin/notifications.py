"""Outgoing webhooks in the admin: owners' endpoints (never their secrets) and every
delivery, the failed ones first, with its attempts; staff with the admin role may send a
delivery again (`notifications.services.delivery_replay`)."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from console.admin_base import OwnerSearchAdmin, ReadOnlyAdmin
from notifications.delivery import delivery_replay
from notifications.models import (
    NotificationSettings,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

ATTEMPTS_SHOWN = 50


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin, OwnerSearchAdmin):
    staff_resource = "webhook_endpoint"
    list_display = ("url", "owner_id", "enabled", "failing_since", "disabled_at", "event_types",
                    "created_at")  # fmt: skip
    list_filter = ("enabled",)
    search_fields = ("owner_id",)
    search_help_text = "Exact owner id."
    owner_field = "owner_id"
    ordering = ("-created_at", "-id")
    fields = ("id", "owner_id", "url", "description", "event_types", "enabled",
              "failing_since", "disabled_at", "previous_secret_expires_at", "created_at",
              "updated_at")  # fmt: skip
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    staff_resource = "webhook_delivery"
    list_display = ("event", "event_type", "endpoint", "status", "attempts", "next_attempt_at",
                    "created_at")  # fmt: skip
    list_filter = ("status", "event__type")
    list_select_related = ("event", "endpoint")
    # "failed" sorts before "pending" and "succeeded": the failed ones first, newest first.
    ordering = ("status", "-created_at", "-id")
    fields = ("id", "event", "endpoint", "status", "attempts", "next_attempt_at", "created_at",
              "attempt_log")  # fmt: skip
    readonly_fields = fields
    actions = ["replay_deliveries"]

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.display(description="Attempts, newest first")
    def attempt_log(self, obj: WebhookDelivery) -> str:
        attempts = WebhookAttempt.objects.filter(delivery=obj).order_by("-attempted_at", "-id")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td><td>{}</td></tr>",
            (
                (a.attempted_at, a.status_code or "-", a.latency_ms, a.error, a.response_body)
                for a in attempts[:ATTEMPTS_SHOWN]
            ),
        )
        return format_html("<table>{}</table>", rows) if rows else "none yet"

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return self.staff_may(request, "replay")

    @admin.action(description="Send the selected deliveries again", permissions=["replay"])
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        replayed = 0
        for delivery_id in queryset.order_by("pk").values_list("pk", flat=True):
            delivery_replay(delivery_id=delivery_id)
            replayed += 1
        self.message_user(request, f"Queued {replayed} deliveries again.", messages.SUCCESS)


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(ReadOnlyAdmin, OwnerSearchAdmin):
    """Owners who changed what they are told (the others have the defaults)."""

    staff_resource = "notification_settings"
    list_display = ("owner_id", "usage_email_enabled", "usage_thresholds", "updated_at")
    list_filter = ("usage_email_enabled",)
    search_fields = ("owner_id",)
    search_help_text = "Exact owner id."
    owner_field = "owner_id"
    ordering = ("owner_id",)
    fields = ("owner_id", "usage_email_enabled", "usage_thresholds", "updated_at")
    readonly_fields = fields
