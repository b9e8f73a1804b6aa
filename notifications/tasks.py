"""Background deliveries of outgoing webhooks."""

from celery import shared_task
from django.conf import settings

from jobs.enqueue import enqueue_now
from jobs.recorded import RecordedTask
from jobs.services import scheduled_run_daily
from notifications.delivery import deliveries_due, delivery_attempt
from notifications.services import endpoint_disabled_email, webhook_events_prune

# A retry starts a little after the row is due, so that the claim finds it due.
DUE_MARGIN_SECONDS = 0.2


class WebhookDeliveryPending(Exception):
    """The endpoint has not accepted the event yet (the last answer is the message)."""


@shared_task(
    bind=True,
    base=RecordedTask,
    name="notifications.webhook_deliver",
    staff_retry_kwargs={"due_only": False},
)
def webhook_deliver(self: RecordedTask, *, delivery_id: str, due_only: bool = True) -> str:
    """Attempt one delivery; send this task again when the delivery is next due."""
    outcome = delivery_attempt(delivery_id=delivery_id, due_only=due_only)
    if outcome.retry_in is None:
        return outcome.summary
    if outcome.retry_in > settings.WEBHOOK_QUEUE_HOLD_SECONDS:
        # Not held in the broker for hours: the sweep sends it when its row is due.
        return f"{outcome.summary}; due again in {outcome.retry_in:.0f} s (the sweep sends it)"
    self.retry_later(
        WebhookDeliveryPending(outcome.summary), countdown=outcome.retry_in + DUE_MARGIN_SECONDS
    )


@shared_task(base=RecordedTask, name="notifications.webhook_endpoint_disabled_email")
def webhook_endpoint_disabled_email(*, endpoint_id: str) -> str:
    """Email the owner that their failing endpoint was disabled."""
    return endpoint_disabled_email(endpoint_id=endpoint_id)


@shared_task(base=RecordedTask, name="notifications.prune_webhook_events")
def prune_webhook_events() -> str | None:
    """Forget old events and their delivery log, once per day however often it is sent."""

    def prune() -> str:
        deleted, cutoff = webhook_events_prune()
        return f"deleted {deleted} webhook events older than {cutoff:%Y-%m-%d %H:%M} UTC"

    return scheduled_run_daily(job="prune_webhook_events", work=prune)


@shared_task(base=RecordedTask, name="notifications.webhook_deliveries_sweep")
def webhook_deliveries_sweep() -> str:
    """Queue every pending delivery that is due (its message lost, or the process died)."""
    due = deliveries_due()
    for delivery_id in due:
        enqueue_now(webhook_deliver, delivery_id=delivery_id)
    return f"{len(due)} queued"
