"""The monthly close survives a worker that dies mid-way through its fan-out: the messages
it held come back (acks_late; Redis redelivers after the visibility timeout), and every
invoice item exists at Stripe once, the one in flight at the kill included (its retry
carries the same idempotency key, so Stripe answers with the item it made)."""

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import call_command

from billing.models import BillingEvent, UserSubscription
from tests.background import wait_until, worker_process
from tests.conftest import STRIPE_KEY
from tests.factories import AgentFactory, messages_ingested
from tests.stripe_fake import StripeFake

USERS = 8


def sent_rows() -> int:
    return BillingEvent.objects.filter(
        event_type="usage_period_closed", metadata__has_key="stripe_invoice_item_id"
    ).count()


def invoice_item_posts(fake: StripeFake) -> list[Any]:
    return fake.requests_to("POST", "/v1/invoiceitems")


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_in_the_middle_of_the_close_leaves_every_invoice_item_once(
    fake: StripeFake, default_plans: None
) -> None:
    from a1zap.celery import app

    for n in range(USERS):
        customer = fake.customer()["id"]
        UserSubscription.objects.create(user_id=f"user_{n}", plan_id="pro",
                                        stripe_customer_id=customer)  # fmt: skip
        agent = AgentFactory.create(owner_id=f"user_{n}")
        messages_ingested(agent, day=dt.date(2026, 9, 14), messages=51_000 + n)
    app.control.purge()
    env = {
        "STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_API_BASE": fake.base_url,
        "STRIPE_MAX_NETWORK_RETRIES": "0", "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_TASK_TIME_LIMIT": "2", "JOBS_RETRY_FIRST_DELAY": "0.2",
        "JOBS_RETRY_MAX_DELAY": "0.5",
        # Look for the messages of dead workers every second (every 100 s by default).
        "CELERY_BROKER_TRANSPORT_OPTIONS": '{"unacked_restore_interval": 1, '
                                           '"unacked_restore_throttle": 1}',
    }  # fmt: skip
    fake.answer_delay, fake.answer_delay_match = 0.1, "POST /v1/invoiceitems"
    call_command("close_billing_period", "--month", "2026-09", stdout=io.StringIO(),
                 stderr=io.StringIO())  # fmt: skip

    first = worker_process(**env)
    try:
        wait_until(lambda: sent_rows() >= 2, "two invoice items")
        # The next item is made at Stripe, but its answer never reaches the worker.
        fake.answer_delay = 30.0
        seen = len(invoice_item_posts(fake))
        wait_until(lambda: len(invoice_item_posts(fake)) > seen, "an item in flight")
        first.kill()
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    fake.answer_delay = 0.0
    in_flight = invoice_item_posts(fake)[-1]
    assert sent_rows() < USERS

    second = worker_process(**env)
    try:
        wait_until(lambda: sent_rows() == USERS, "every invoice item")
    finally:
        second.terminate()
        second.wait(timeout=30)

    items = fake.created("invoiceitem")
    assert len(items) == USERS
    stored = {
        (row.metadata or {})["stripe_invoice_item_id"]
        for row in BillingEvent.objects.filter(event_type="usage_period_closed")
    }
    assert stored == {item["id"] for item in items}
    assert {item["customer"] for item in items} == set(
        UserSubscription.objects.values_list("stripe_customer_id", flat=True)
    )
    again = [r for r in invoice_item_posts(fake) if r.idempotency_key == in_flight.idempotency_key]
    assert len(again) == 2
    assert again[-1].replayed
