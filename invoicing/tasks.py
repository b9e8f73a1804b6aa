"""Background work on Stripe: each task works off a row we committed, with an idempotency key
derived from it, so that a retried or redelivered task changes nothing twice."""

import datetime as dt

from celery import shared_task

from core.months import current_month, format_month
from invoicing import closing, stripe_inbox
from invoicing.stripe_cancellations import (
    last_error,
    seconds_until_due,
    stripe_cancellation_attempt,
    stripe_cancellations_retry,
)
from invoicing.stripe_gateway import BillingUnavailable
from jobs.recorded import RecordedTask
from jobs.services import scheduled_run_once

# A retry starts a little after the row is due, so that the claim finds it due.
DUE_MARGIN_SECONDS = 0.5


class StripeCancellationPending(Exception):
    """Stripe has not cancelled the subscription yet (the last error is the message)."""


@shared_task(
    bind=True,
    base=RecordedTask,
    name="invoicing.stripe_cancellation_send",
    # Staff retry at once, whatever the row's next due time.
    staff_retry_kwargs={"due_only": False},
)
def stripe_cancellation_send(
    self: RecordedTask, *, stripe_subscription_id: str, due_only: bool = True
) -> str:
    """Cancel one pending subscription at Stripe; retry when the row is next due."""
    outcome = stripe_cancellation_attempt(
        stripe_subscription_id=stripe_subscription_id, due_only=due_only
    )
    if outcome is None:
        return "nothing to do"  # cancelled already, not due (the sweep has it) or in progress
    if outcome:
        return "cancelled"
    wait = seconds_until_due(stripe_subscription_id)
    if wait is None:
        return "nothing to do"
    self.retry_later(
        StripeCancellationPending(last_error(stripe_subscription_id)),
        countdown=wait + DUE_MARGIN_SECONDS,
    )


@shared_task(base=RecordedTask, name="invoicing.stripe_cancellations_sweep")
def stripe_cancellations_sweep() -> str:
    """Attempt every pending cancellation that is due (what `retry_stripe_cancellations` runs)."""
    result = stripe_cancellations_retry()
    return f"{result.cancelled} cancelled, {result.failed} failed, {result.waiting} waiting"


@shared_task(bind=True, base=RecordedTask, name="invoicing.overage_invoice_item_send")
def overage_invoice_item_send(self: RecordedTask, *, billing_event_id: str) -> str:
    """Send one monthly-close row to Stripe as an invoice item; retry while Stripe is down.
    A refusal (a 4xx from Stripe) is not retried: it is recorded as a failed job."""
    try:
        return closing.overage_invoice_item_send(billing_event_id=billing_event_id)
    except BillingUnavailable as error:
        self.retry_later(error)


@shared_task(bind=True, base=RecordedTask, name="invoicing.stripe_event_apply")
def stripe_event_apply(self: RecordedTask, *, stripe_event_id: str) -> str:
    """Apply one stored Stripe webhook event (in order per customer); retry while Stripe is
    unreachable (dj-stripe re-fetches the event's objects)."""
    try:
        return stripe_inbox.stripe_event_process(stripe_event_id=stripe_event_id)
    except BillingUnavailable as error:
        self.retry_later(error)


@shared_task(base=RecordedTask, name="invoicing.stripe_events_sweep")
def stripe_events_sweep() -> str:
    """Queue again the Stripe events no task is applying; forget old applied ones."""
    queued, forgotten = stripe_inbox.stripe_events_sweep()
    return f"{queued} queued again, {forgotten} forgotten"


class CloseNotQueued(Exception):
    """Some invoice items of the close could not be queued (the broker refused them)."""


@shared_task(base=RecordedTask, name="invoicing.close_previous_month")
def close_previous_month() -> str | None:
    """The monthly close of last month (beat sends it on the 1st): ledger rows, then one task
    per invoice item; once per month however often it is sent (its ledger rows and items are
    unique per user and month in any case). If items could not be queued, the run stays
    unfinished and fails: a retry of the failed job, or the next send, queues them."""
    month = (current_month() - dt.timedelta(days=1)).replace(day=1)
    period = format_month(month)

    def close() -> str:
        new_rows = closing.close_period_record(month)
        fan_out = closing.close_period_fan_out(period)
        if fan_out.not_queued:
            raise CloseNotQueued(f"{fan_out.not_queued} invoice items of {period} not queued")
        return f"{period}: {new_rows} ledger rows, {fan_out.queued} invoice items queued"

    return scheduled_run_once(job="close_billing_period", slot=period, work=close)
