"""Stripe's webhook events: stored when they arrive, applied by a task, in order per customer.

1. The webhook (`invoicing.webhooks`) verifies the signature and the shape, stores the event
   in `stripe_webhook_events` (once per Stripe event id: a redelivery finds it) and answers
   200; the task that applies it is queued when the row commits.
2. The task (`invoicing.tasks.stripe_event_apply`) takes a session lock on the event's
   customer, so that one customer's events apply one at a time however many workers run,
   then applies it (`invoicing.stripe_events.stripe_event_apply`: dj-stripe's sync, then our
   subscription and ledger) and marks the row applied. An event older than the state already
   applied is recorded, not applied (`stripe_state_at`): the newer state stands whatever order
   the tasks run in. Stripe unreachable: the task retries with backoff.
3. The scheduled sweep (`stripe_events_sweep`) queues again the events whose task was lost or
   gave up (no attempt for longer than the longest retry delay), and forgets applied events
   after `KEEP`.
"""

import datetime as dt
import json
import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now

from core.advisory_locks import advisory_lock
from invoicing.models import StripeWebhookEvent
from invoicing.stripe_events import stripe_event_apply
from jobs.enqueue import enqueue_now, enqueue_on_commit

logger = logging.getLogger(__name__)

# Stripe retries a delivery for three days; applied events are kept a month, for support.
KEEP = dt.timedelta(days=30)
# A pending event with no attempt for this long past the longest retry delay has no task.
SWEEP_MARGIN = dt.timedelta(minutes=5)


def ordering_key(event: dict[str, Any]) -> str:
    """Whose events must apply one at a time: the Stripe customer (whose one subscription
    row each event moves), else our user, else the event alone."""
    obj = event["data"]["object"]
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if customer:
        return f"customer:{customer}"
    user_id = (obj.get("metadata") or {}).get("user_id") or obj.get("client_reference_id")
    return f"user:{user_id}" if user_id else f"event:{event['id']}"


@transaction.atomic
def stripe_event_store(*, event: dict[str, Any]) -> str:
    """Store a verified event and queue its task once this commits; return `queued`, or
    `duplicate` for an event already applied (a redelivery of one still pending is queued
    again: its first task may have been lost)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO stripe_webhook_events (stripe_event_id, event_type, payload, ordering_key)
            VALUES (%s, %s, %s::jsonb, %s)
            ON CONFLICT (stripe_event_id) DO UPDATE SET stripe_event_id = EXCLUDED.stripe_event_id
            RETURNING applied_at IS NOT NULL
            """,
            [event["id"], event["type"], json.dumps(event), ordering_key(event)],
        )
        row = cursor.fetchone()
    if row and row[0]:
        return "duplicate"
    from invoicing.tasks import stripe_event_apply as apply_task  # it imports this module

    enqueue_on_commit(apply_task, stripe_event_id=event["id"])
    return "queued"


def stripe_event_process(*, stripe_event_id: str) -> str:
    """Apply one stored event unless it is applied already; return what happened. Raises
    `BillingUnavailable` when Stripe cannot be reached (the event stays pending)."""
    stored = StripeWebhookEvent.objects.filter(pk=stripe_event_id).first()
    if stored is None:
        return "missing"
    if stored.applied_at is not None:
        return "duplicate"
    with advisory_lock(f"stripe-order:{stored.ordering_key}"):
        # Another task may have applied it while this one waited for the lock.
        claimed = StripeWebhookEvent.objects.filter(
            pk=stripe_event_id, applied_at__isnull=True
        ).update(attempts=F("attempts") + 1, last_attempt_at=Now())
        if not claimed:
            return "duplicate"
        try:
            outcome = stripe_event_apply(event=stored.payload)
        except Exception as error:
            StripeWebhookEvent.objects.filter(pk=stripe_event_id).update(
                last_error=f"{type(error).__name__}: {error}"[:2000]
            )
            raise
        StripeWebhookEvent.objects.filter(pk=stripe_event_id, applied_at__isnull=True).update(
            applied_at=Now(), outcome=outcome
        )
    logger.info("Stripe event %s (%s): %s", stripe_event_id, stored.event_type, outcome)
    return outcome


def stripe_events_sweep() -> tuple[int, int]:
    """Queue again the pending events that no task is working on; forget applied events older
    than KEEP. Return (queued, forgotten)."""
    from invoicing.tasks import stripe_event_apply as apply_task  # it imports this module

    idle = dt.timedelta(seconds=settings.JOBS_RETRY_MAX_DELAY) + SWEEP_MARGIN
    stale = StripeWebhookEvent.objects.filter(applied_at__isnull=True).filter(
        Q(last_attempt_at__isnull=True, received_at__lt=Now() - idle)
        | Q(last_attempt_at__lt=Now() - idle)
    )
    queued = sum(
        enqueue_now(apply_task, stripe_event_id=stripe_event_id)
        for stripe_event_id in stale.order_by("received_at").values_list("pk", flat=True)[:1000]
    )
    forgotten, _ = StripeWebhookEvent.objects.filter(
        applied_at__isnull=False, received_at__lt=Now() - KEEP
    ).delete()
    return queued, forgotten
