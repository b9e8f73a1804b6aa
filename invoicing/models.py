"""The Stripe webhook's inbox: each verified event is stored when it arrives, then applied by
a task (`invoicing.tasks.stripe_event_apply`), so that Stripe gets its answer at once and no
event is lost to an outage of ours or Stripe's while it is applied."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class StripeWebhookEvent(models.Model):
    """A verified Stripe event: stored once per Stripe event id, applied once."""

    stripe_event_id = models.TextField(primary_key=True)
    event_type = models.TextField()
    payload = models.JSONField()
    # Events with the same key (the Stripe customer) are applied one at a time, in the order
    # their tasks take the key's lock; `stripe_state_at` keeps an older one from rolling back.
    ordering_key = models.TextField()
    received_at = models.DateTimeField(db_default=Now())
    attempts = models.IntegerField(default=0, db_default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "stripe_webhook_events"
        indexes = [
            models.Index(
                fields=["received_at"],
                name="stripe_events_pending",
                condition=Q(applied_at__isnull=True),
            ),
            models.Index(fields=["received_at"], name="stripe_events_received"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(applied_at__isnull=True, outcome__isnull=True)
                | Q(applied_at__isnull=False, outcome__isnull=False),
                name="stripe_events_applied_with_outcome",
            ),
            models.CheckConstraint(
                condition=Q(attempts__gte=0), name="stripe_events_attempts_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.stripe_event_id}"
