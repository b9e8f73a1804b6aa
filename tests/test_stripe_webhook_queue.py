"""Stripe's webhook answers before anything is applied, and a task applies each event; one
customer's events apply one at a time, and the newer state stands whatever order they are
delivered or applied in."""

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from billing.models import BillingEvent, UserSubscription
from invoicing.models import StripeWebhookEvent
from invoicing.stripe_inbox import stripe_event_process
from tests.background import wait_until
from tests.concurrency import race
from tests.stripe_fake import StripeFake
from tests.test_billing_stripe import post_webhook

pytestmark = pytest.mark.django_db


def applied(*events: dict[str, Any]) -> bool:
    ids = [event["id"] for event in events]
    return StripeWebhookEvent.objects.filter(pk__in=ids, applied_at__isnull=False).count() == len(
        ids
    )


def newer_and_older(
    fake: StripeFake, sub_id: str, user: str = "user_1"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two events for one subscription: the newer moves it to enterprise, the older (sent a
    minute before) to pro."""
    now = int(time.time())
    customer = fake.customer(metadata={"user_id": user})
    older = fake.event(
        "customer.subscription.created",
        fake.subscription(sub_id, customer=customer["id"], lookup_key="a1zap_pro_month",
                          metadata={"user_id": user}),
        created=now - 60,
    )  # fmt: skip
    newer = fake.event(
        "customer.subscription.updated",
        fake.subscription(sub_id, customer=customer["id"], lookup_key="a1zap_enterprise_month",
                          metadata={"user_id": user}),
        created=now,
    )  # fmt: skip
    return newer, older


def test_a_webhook_is_answered_and_stored_before_it_is_applied(
    fake: StripeFake, start_worker: Callable[[], Any]
) -> None:
    newer, _ = newer_and_older(fake, "sub_first")

    answer = post_webhook(newer)

    assert (answer.status_code, answer.json()) == (200, {"status": "ok", "outcome": "queued"})
    stored = StripeWebhookEvent.objects.get(pk=newer["id"])
    assert (stored.event_type, stored.applied_at, stored.payload) == (
        "customer.subscription.updated", None, newer,
    )  # fmt: skip
    assert not UserSubscription.objects.exists()
    assert not BillingEvent.objects.exists()
    assert fake.requests == []  # not even dj-stripe's sync has run

    with start_worker():
        wait_until(lambda: applied(newer), "the worker to apply the event")

    assert UserSubscription.objects.get(user_id="user_1").plan_id == "enterprise"
    assert StripeWebhookEvent.objects.get(pk=newer["id"]).outcome == "applied"


def test_two_events_delivered_out_of_order_end_in_the_newer_state(
    fake: StripeFake, worker: Any
) -> None:
    newer, older = newer_and_older(fake, "sub_order")

    answers = [post_webhook(newer), post_webhook(older)]
    wait_until(lambda: applied(newer, older), "both events applied")

    assert [a.json()["outcome"] for a in answers] == ["queued", "queued"]
    row = UserSubscription.objects.get(user_id="user_1")
    assert (row.plan_id, row.max_total_agents) == ("enterprise", -1)
    outcomes = dict(StripeWebhookEvent.objects.values_list("pk", "outcome"))
    assert outcomes == {newer["id"]: "applied", older["id"]: "recorded"}
    assert BillingEvent.objects.filter(user_id="user_1").count() == 2


def test_a_redelivered_event_is_answered_duplicate_once_applied_and_applied_once(
    fake: StripeFake, worker: Any
) -> None:
    newer, _ = newer_and_older(fake, "sub_again")
    post_webhook(newer)
    wait_until(lambda: applied(newer), "the event applied")

    again = post_webhook(newer)

    assert again.json() == {"status": "ok", "outcome": "duplicate"}
    assert BillingEvent.objects.filter(user_id="user_1").count() == 1
    assert StripeWebhookEvent.objects.get(pk=newer["id"]).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_tasks_applying_one_customers_events_at_once_leave_the_newer_state(
    fake: StripeFake, default_plans: None
) -> None:
    from djstripe.models import Event

    for round_number in range(3):
        user = f"user_race_{round_number}"
        newer, older = newer_and_older(fake, f"sub_race_{round_number}", user)
        for event in (newer, older):
            assert post_webhook(event).json()["outcome"] == "queued"

        outcomes = race([
            partial(stripe_event_process, stripe_event_id=older["id"]),
            partial(stripe_event_process, stripe_event_id=newer["id"]),
        ])  # fmt: skip

        assert sorted(outcomes) in (["applied", "recorded"], ["applied", "applied"])
        row = UserSubscription.objects.get(user_id=user)
        assert (row.plan_id, row.stripe_subscription_id) == (
            "enterprise",
            f"sub_race_{round_number}",
        )
        assert Event.objects.filter(id__in=[newer["id"], older["id"]]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_event_waits_while_another_of_the_same_customer_is_being_applied(
    fake: StripeFake, default_plans: None
) -> None:
    import threading

    from django.db import connection

    from core.advisory_locks import advisory_lock
    from invoicing.stripe_inbox import ordering_key

    newer, _ = newer_and_older(fake, "sub_wait")
    post_webhook(newer)
    outcomes: list[str] = []

    def apply() -> None:
        try:
            outcomes.append(stripe_event_process(stripe_event_id=newer["id"]))
        finally:
            connection.close()

    def waiting_for_the_lock() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            return cursor.fetchone()[0] == 1

    # What the task applying another event of this customer holds.
    with advisory_lock(f"stripe-order:{ordering_key(newer)}"):
        task = threading.Thread(target=apply)
        task.start()
        wait_until(waiting_for_the_lock, "the task to wait for the customer's lock")
        assert not UserSubscription.objects.exists()
    task.join(timeout=60)

    assert outcomes == ["applied"]
    assert UserSubscription.objects.get(user_id="user_1").plan_id == "enterprise"


def test_the_sweep_queues_again_an_event_whose_task_was_lost(
    fake: StripeFake, start_worker: Callable[[], Any]
) -> None:
    import datetime as dt

    from django.utils import timezone

    from a1zap.celery import app
    from invoicing.stripe_inbox import stripe_events_sweep

    newer, _ = newer_and_older(fake, "sub_lost")
    post_webhook(newer)
    app.control.purge()  # the message is lost (a broker that lost its data, say)
    assert stripe_events_sweep() == (0, 0)  # too recent: its task may still be coming
    StripeWebhookEvent.objects.update(received_at=timezone.now() - dt.timedelta(minutes=10))

    with start_worker():
        assert stripe_events_sweep() == (1, 0)
        wait_until(lambda: applied(newer), "the event applied")

    assert UserSubscription.objects.get(user_id="user_1").plan_id == "enterprise"
