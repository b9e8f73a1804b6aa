"""Outgoing webhooks: owners' endpoints, the outbox of events, deliveries and their attempts."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from core.encryption import EncryptedTextField


class WebhookEndpoint(models.Model):
    """A URL an owner receives events on, signed with the endpoint's own secret.

    After a rotation the previous secret keeps signing (beside the new one) until
    `previous_secret_expires_at`, so that a receiver can roll over without losing events.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner_id = models.TextField()
    url = models.TextField()
    description = models.TextField(blank=True, default="", db_default="")
    # Empty means every event type (except the opt-in ones).
    event_types = ArrayField(models.TextField(), default=list, db_default=[], blank=True)
    enabled = models.BooleanField(default=True, db_default=True)
    secret = EncryptedTextField()
    previous_secret = EncryptedTextField(null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Since when every attempt has failed (None after a success); past
    # WEBHOOK_DISABLE_AFTER_SECONDS the endpoint is disabled (`disabled_at`) and its owner told.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "webhook_endpoints"
        ordering = ("created_at", "id")
        indexes = [models.Index(fields=["owner_id", "created_at"], name="webhook_endpoints_owner")]
        constraints = [
            models.CheckConstraint(
                condition=Q(previous_secret__isnull=True, previous_secret_expires_at__isnull=True)
                | Q(previous_secret__isnull=False, previous_secret_expires_at__isnull=False),
                name="webhook_endpoints_previous_secret_complete",
            ),
            models.CheckConstraint(
                condition=Q(url__startswith="https://") | Q(url__startswith="http://"),
                name="webhook_endpoints_url_http",
            ),
            models.CheckConstraint(
                condition=Q(disabled_at__isnull=True) | Q(enabled=False),
                name="webhook_endpoints_disabled_is_not_enabled",
            ),
        ]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One event (the outbox row), written in the transaction of the change it describes.

    Its id is the `webhook-id` of every delivery of it, the same across retries."""

    id = models.TextField(primary_key=True)
    owner_id = models.TextField()
    type = models.TextField()
    payload = models.JSONField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "webhook_events"
        ordering = ("-created_at", "id")
        indexes = [models.Index(fields=["owner_id", "-created_at"], name="webhook_events_owner")]

    def __str__(self) -> str:
        return f"{self.type} ({self.id})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event to one endpoint: pending until a 2xx, failed once retrying is over."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(WebhookEvent, on_delete=models.DO_NOTHING, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.DO_NOTHING, related_name="deliveries"
    )
    status = models.TextField(
        choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_default="pending"
    )
    attempts = models.IntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(db_default=Now())
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "webhook_deliveries"
        permissions = [("replay_webhookdelivery", "Can send a webhook delivery again")]
        ordering = ("-created_at", "id")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_deliveries_due",
                condition=Q(status="pending"),
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed"]),
                name="webhook_deliveries_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(attempts__gte=0), name="webhook_deliveries_attempts_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} to {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, as the owner reads it in the delivery log."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.DO_NOTHING, related_name="attempt_log"
    )
    attempted_at = models.DateTimeField(db_default=Now())
    status_code = models.IntegerField(null=True, blank=True)
    latency_ms = models.IntegerField()
    response_body = models.TextField(blank=True, default="", db_default="")
    error = models.TextField(blank=True, default="", db_default="")
    succeeded = models.BooleanField()

    class Meta:
        db_table = "webhook_attempts"
        ordering = ("-attempted_at", "-id")
        indexes = [models.Index(fields=["delivery", "-attempted_at"], name="webhook_attempts_log")]
        constraints = [
            models.CheckConstraint(
                condition=Q(latency_ms__gte=0), name="webhook_attempts_latency_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.attempted_at}: {self.status_code or self.error}"


# The usage thresholds an owner is told of unless they chose others (percent of the month's
# included messages), and the bounds of a choice.
DEFAULT_USAGE_THRESHOLDS = (50, 80, 100)
MAX_USAGE_THRESHOLDS = 5
MIN_USAGE_THRESHOLD = 10


def default_usage_thresholds() -> list[int]:
    return list(DEFAULT_USAGE_THRESHOLDS)


class NotificationSettings(models.Model):
    """An owner's choices about what they are told; an owner without a row has the defaults.

    The usage statement reads `usage_thresholds` by table name (usage/services.py), so the
    thresholds are decided in the same statement that moves the counter."""

    owner_id = models.TextField(primary_key=True)
    usage_email_enabled = models.BooleanField(default=True, db_default=True)
    usage_thresholds = ArrayField(
        models.IntegerField(),
        default=default_usage_thresholds,
        db_default=list(DEFAULT_USAGE_THRESHOLDS),
    )
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "notification_settings"
        verbose_name_plural = "notification settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(usage_thresholds__len__lte=MAX_USAGE_THRESHOLDS),
                name="notification_settings_thresholds_few",
            ),
            models.CheckConstraint(
                condition=Q(usage_thresholds__contained_by=list(range(MIN_USAGE_THRESHOLD, 101))),
                name="notification_settings_thresholds_range",
            ),
        ]

    def __str__(self) -> str:
        return self.owner_id
