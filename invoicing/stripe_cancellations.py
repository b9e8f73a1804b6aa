"""Cancel subscriptions at Stripe durably: a cancellation stays a row until Stripe has it.

1. `billing.services.stripe_cancellation_record` writes a `stripe_pending_cancellations` row
   (an outbox) in the caller's transaction, so it commits with the decision to cancel, or not
   at all; `stripe_cancellation_request` also queues the task that sends it
   (`invoicing.tasks.stripe_cancellation_send`) once that transaction commits. Billing, which
   decides, never talks to Stripe: the layers above send.
2. An attempt claims the row for a few minutes (a lease: `next_attempt_at` moves ahead),
   calls Stripe outside any transaction (`DELETE /v1/subscriptions/<id>`, idempotency key
   `a1zap-cancel-<id>`), then deletes the row, or records the error and backs off
   (exponentially, with jitter: `jobs.retrying`); the task tries again when the row is due,
   and once its retries are spent the failure is a failed job staff can retry.
3. The scheduled sweep (`invoicing.tasks.stripe_cancellations_sweep`, every few minutes) and
   `manage.py retry_stripe_cancellations` both run `stripe_cancellations_retry` on the rows
   that are due: what a lost message or an exhausted task left behind.

No cancellation is lost (the row outlives any outage) and none is sent twice at once (the
primary key is the subscription id and one attempt at a time holds the lease). Stripe answers
"No such subscription" for a subscription already cancelled, so a repeated cancellation is
confirmed with a read and counts as done.
"""

import datetime as dt
import logging
from dataclasses import dataclass

import stripe
from django.db import connection
from django.db.models.functions import Now

from billing.models import StripePendingCancellation
from billing.services import stripe_cancellation_record
from invoicing.stripe_gateway import options as stripe_options
from invoicing.stripe_gateway import stripe_client
from jobs.enqueue import enqueue_on_commit
from jobs.retrying import retry_delay

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})


def idempotency_key(stripe_subscription_id: str) -> str:
    return f"a1zap-cancel-{stripe_subscription_id}"


def stripe_cancellation_request(*, stripe_subscription_id: str, user_id: str) -> None:
    """Record that Stripe must cancel this subscription, and send it once this commits.

    Must run inside the transaction that decides the cancellation. Asking twice is asking once.
    """
    stripe_cancellation_record(stripe_subscription_id=stripe_subscription_id, user_id=user_id)
    stripe_cancellation_send_on_commit(stripe_subscription_id=stripe_subscription_id)


def stripe_cancellation_send_on_commit(*, stripe_subscription_id: str) -> None:
    """Queue the sending of the recorded cancellation once the caller's transaction commits
    (the row stays for the sweep if the task fails or is never queued)."""
    from invoicing.tasks import stripe_cancellation_send  # the tasks module imports this one

    enqueue_on_commit(stripe_cancellation_send, stripe_subscription_id=stripe_subscription_id)


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=retry_delay(attempts))


def seconds_until_due(stripe_subscription_id: str) -> float | None:
    """How long the pending cancellation waits before its next attempt (None if it is gone)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT GREATEST(0, EXTRACT(EPOCH FROM next_attempt_at - statement_timestamp())) "
            "FROM stripe_pending_cancellations WHERE stripe_subscription_id = %s",
            [stripe_subscription_id],
        )
        row = cursor.fetchone()
    return float(row[0]) if row else None


def last_error(stripe_subscription_id: str) -> str:
    return (
        StripePendingCancellation.objects.filter(pk=stripe_subscription_id)
        .values_list("last_error", flat=True)
        .first()
        or "unknown error"
    )


def _claim(stripe_subscription_id: str, *, due_only: bool) -> int | None:
    """Take the row's lease; return its attempt count, or None if it is gone or not ours."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE stripe_pending_cancellations
            SET attempts = attempts + 1,
                next_attempt_at = statement_timestamp() + make_interval(secs => %s)
            WHERE stripe_subscription_id = %s
              AND (NOT %s OR next_attempt_at <= statement_timestamp())
            RETURNING attempts
            """,
            [LEASE.total_seconds(), stripe_subscription_id, due_only],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _cancel_at_stripe(stripe_subscription_id: str) -> None:
    """Cancel now at Stripe; return quietly if Stripe has it cancelled (or has no such thing)."""
    client = stripe_client()
    try:
        client.v1.subscriptions.cancel(
            stripe_subscription_id, options=stripe_options(idempotency_key(stripe_subscription_id))
        )
        return
    except stripe.InvalidRequestError as error:
        if error.code != "resource_missing":
            raise
    try:
        current = client.v1.subscriptions.retrieve(stripe_subscription_id)
    except stripe.InvalidRequestError as error:
        if error.code != "resource_missing":
            raise
        logger.warning("Stripe has no subscription %s: nothing to cancel", stripe_subscription_id)
        return
    if current.status not in ENDED_STATUSES:
        raise RuntimeError(f"Stripe refused to cancel {stripe_subscription_id} ({current.status})")


def stripe_cancellation_attempt(
    *, stripe_subscription_id: str, due_only: bool = True
) -> bool | None:
    """Try to cancel one pending subscription at Stripe.

    Return True when Stripe has it (the row is deleted), False when it failed (the error is
    recorded and the row waits for its next attempt), None when there was nothing to try:
    the row is gone, not due yet (with `due_only`), or another attempt holds it.
    """
    attempts = _claim(stripe_subscription_id, due_only=due_only)
    if attempts is None:
        return None
    try:
        _cancel_at_stripe(stripe_subscription_id)
    except Exception as error:
        # Whatever went wrong, the row stays: a later sweep tries again.
        logger.warning(
            "Cancelling Stripe subscription %s failed (attempt %d): %s",
            stripe_subscription_id, attempts, error,
        )  # fmt: skip
        StripePendingCancellation.objects.filter(pk=stripe_subscription_id).update(
            last_error=f"{type(error).__name__}: {error}"[:2000],
            next_attempt_at=Now() + _backoff(attempts),
        )
        return False
    StripePendingCancellation.objects.filter(pk=stripe_subscription_id).delete()
    logger.info("Cancelled Stripe subscription %s", stripe_subscription_id)
    return True


@dataclass
class RetryResult:
    cancelled: int = 0
    failed: int = 0
    waiting: int = 0


def stripe_cancellations_retry(*, include_waiting: bool = False) -> RetryResult:
    """Attempt every pending cancellation that is due (or all, with `include_waiting`)."""
    pending = StripePendingCancellation.objects.order_by("next_attempt_at")
    due = pending if include_waiting else pending.filter(next_attempt_at__lte=Now())
    result = RetryResult()
    for stripe_subscription_id in list(due.values_list("pk", flat=True)):
        outcome = stripe_cancellation_attempt(
            stripe_subscription_id=stripe_subscription_id, due_only=not include_waiting
        )
        if outcome is True:
            result.cancelled += 1
        elif outcome is False:
            result.failed += 1
    result.waiting = StripePendingCancellation.objects.count() - result.failed
    return result
