"""A deleted user stops paying: their Stripe subscription is cancelled at Stripe, once, even
when Stripe is down when they are deleted, and no later Stripe event brings it back.

The cancellation is sent by a task queued when the deletion commits; the tests that need it
sent run a real worker (`worker`), the others send through the sweep command."""

import io
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from billing.models import BillingEvent, StripePendingCancellation, UserSubscription
from jobs.models import FailedJob
from tests.background import wait_until
from tests.stripe_fake import StripeFake
from tests.test_billing_stripe import deliver
from tests.test_stack_auth_webhook import SECRET as STACK_AUTH_SECRET
from tests.test_stack_auth_webhook import post_event, user_event

pytestmark = pytest.mark.django_db

Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]

# Columns that say where a subscription ended up (the bookkeeping ones aside).
END_STATE = (
    "plan_id", "status", "max_personal_agents", "max_work_agents", "max_total_agents",
    "past_due_since",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _stack_auth_secret(settings: SettingsWrapper) -> None:
    settings.STACK_AUTH_WEBHOOK_SECRET = STACK_AUTH_SECRET


def paying_user(fake: StripeFake, user: str = "user_1", **subscription: Any) -> dict[str, Any]:
    """A user on pro through Stripe, as the webhook leaves them; return the Stripe object."""
    customer = fake.customer(metadata={"user_id": user})
    sub = fake.subscription(customer=customer["id"], metadata={"user_id": user}, **subscription)
    response = deliver(fake.event("customer.subscription.created", sub, created=_now() - 60))
    assert response.json()["outcome"] == "applied"
    return sub


def paying_row(fake: StripeFake, user: str = "user_1") -> dict[str, Any]:
    """A user on pro through Stripe, written directly (no webhook, so that nothing else is
    queued for the worker); return the Stripe subscription."""
    customer = fake.customer(metadata={"user_id": user})
    sub = fake.subscription(customer=customer["id"], metadata={"user_id": user})
    UserSubscription.objects.create(
        user_id=user, plan_id="pro", status="active", stripe_customer_id=customer["id"],
        stripe_subscription_id=sub["id"], max_personal_agents=5, max_work_agents=5,
        max_total_agents=10,
    )  # fmt: skip
    return sub


def delete_user(capture: Capture | None = None, user: str = "user_1") -> Any:
    """Deliver Stack Auth's `user.deleted` (running what waits for the commit, which queues
    the cancellation's task, when given Django's capture of on-commit callbacks)."""
    if capture is None:
        response = post_event(Client(), user_event("deleted", user, teams=[]))
    else:
        with capture(execute=True):
            response = post_event(Client(), user_event("deleted", user, teams=[]))
    assert response.status_code == 200
    return response


def cancelled_at_stripe(fake: StripeFake, sub_id: str) -> bool:
    return (fake.get(sub_id) or {}).get("status") == "canceled"


def cancellations(fake: StripeFake, sub_id: str) -> list[Any]:
    return fake.requests_to("DELETE", f"/v1/subscriptions/{sub_id}")


def retry(*args: str) -> str:
    out = io.StringIO()
    call_command("retry_stripe_cancellations", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def retry_failing() -> str:
    """Run the sweep command, which fails; return the error it ends with."""
    with pytest.raises(CommandError) as failed:
        retry()
    return str(failed.value)


def _now() -> int:
    return int(time.time())


def test_deleting_a_user_cancels_their_stripe_subscription_with_an_idempotency_key(
    fake: StripeFake, worker: Any
) -> None:
    sub = paying_row(fake)

    delete_user()

    wait_until(lambda: not StripePendingCancellation.objects.exists(), "the cancellation task")
    (cancel,) = cancellations(fake, sub["id"])
    assert cancel.status == 200
    assert cancel.idempotency_key == f"a1zap-cancel-{sub['id']}"
    assert (fake.get(sub["id"]) or {})["status"] == "canceled"
    assert not StripePendingCancellation.objects.exists()
    row = UserSubscription.objects.get(user_id="user_1")
    assert (row.plan_id, row.status, row.max_total_agents) == ("free", "cancelled", 2)
    assert row.cancelled_at is not None


def test_deleting_a_user_ends_the_row_exactly_as_stripes_own_deletion_does(
    fake: StripeFake, django_capture_on_commit_callbacks: Capture
) -> None:
    sub_a = paying_user(fake, "user_a")
    paying_user(fake, "user_b")
    UserSubscription.objects.update(past_due_since=timezone.now(), status="past_due")
    ended = fake.subscription(sub_a["id"], customer=sub_a["customer"], status="canceled",
                              metadata={"user_id": "user_a"})  # fmt: skip

    deliver(fake.event("customer.subscription.deleted", ended))
    delete_user(django_capture_on_commit_callbacks, "user_b")

    by_stripe = UserSubscription.objects.get(user_id="user_a")
    by_deletion = UserSubscription.objects.get(user_id="user_b")
    end_state = [getattr(by_stripe, field) for field in END_STATE]
    assert [getattr(by_deletion, field) for field in END_STATE] == end_state
    assert (by_stripe.plan_id, by_stripe.status, by_stripe.past_due_since) == (
        "free", "cancelled", None,
    )  # fmt: skip
    assert by_stripe.cancelled_at is not None
    assert by_deletion.cancelled_at is not None


def test_stripe_down_when_a_user_is_deleted_the_task_retries_and_reaches_stripe_once(
    fake: StripeFake, worker: Any
) -> None:
    sub = paying_row(fake)
    fake.fail_with = 503

    delete_user()
    failing = wait_until(
        lambda: StripePendingCancellation.objects.filter(attempts__gte=2).first(),
        "two failed attempts",
    )
    fake.fail_with = None

    wait_until(lambda: not StripePendingCancellation.objects.exists(), "the cancellation")
    assert "503" in (failing.last_error or "") or "unknown error" in (failing.last_error or "")
    sent = [r for r in cancellations(fake, sub["id"]) if r.status == 200]
    assert len(sent) == 1
    assert all(r.status == 503 for r in cancellations(fake, sub["id"]) if r is not sent[0])
    assert {r.idempotency_key for r in cancellations(fake, sub["id"])} == {
        f"a1zap-cancel-{sub['id']}"
    }
    assert cancelled_at_stripe(fake, sub["id"])
    assert not FailedJob.objects.exists()


def test_a_cancellation_stripe_never_took_is_a_failed_job_that_staff_can_retry(
    fake: StripeFake, worker: Any, settings: Any
) -> None:
    from django.contrib.auth.models import Group, User

    sub = paying_row(fake)
    fake.fail_with = 503
    delete_user()
    job = wait_until(lambda: FailedJob.objects.first(), "the failed job")
    assert job.task_name == "invoicing.stripe_cancellation_send"
    assert job.kwargs == {"stripe_subscription_id": sub["id"], "due_only": False}
    assert "StripeCancellationPending" in job.error
    assert job.retries == settings.JOBS_MAX_RETRIES
    assert StripePendingCancellation.objects.filter(pk=sub["id"]).exists()  # never dropped
    fake.fail_with = None
    admin = User.objects.create_user("ops", password="pw", is_staff=True)
    admin.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(admin)

    response = client.post(
        "/admin/jobs/failedjob/", {"action": "retry_jobs", "_selected_action": [job.pk]}
    )

    assert response.status_code == 302
    wait_until(lambda: not StripePendingCancellation.objects.exists(), "the retried job")
    assert cancelled_at_stripe(fake, sub["id"])
    assert len([r for r in cancellations(fake, sub["id"]) if r.status == 200]) == 1
    job.refresh_from_db()
    assert (job.retried_by, job.retry_task_id is not None) == ("ops", True)


def test_when_stripe_is_down_the_cancellation_waits_and_the_retry_command_sends_it_once(
    fake: StripeFake, django_capture_on_commit_callbacks: Capture
) -> None:
    sub = paying_user(fake)
    fake.down = True
    delete_user(django_capture_on_commit_callbacks)  # queued; no worker runs it here

    assert "1 cancellation is still pending" in retry_failing()

    pending = StripePendingCancellation.objects.get()
    assert (pending.stripe_subscription_id, pending.user_id, pending.attempts) == (
        sub["id"], "user_1", 1,
    )  # fmt: skip
    assert pending.last_error
    assert pending.next_attempt_at > timezone.now()  # backs off
    assert (fake.get(sub["id"]) or {})["status"] == "active"
    assert UserSubscription.objects.get(user_id="user_1").status == "cancelled"

    # Before its next attempt is due, the sweep leaves it; once due, it sends it.
    fake.down = False
    assert "0 cancelled" in retry()
    StripePendingCancellation.objects.update(next_attempt_at=timezone.now())
    first = retry()
    second = retry()

    assert "1 cancelled" in first
    assert "0 cancelled" in second
    sent = [r for r in cancellations(fake, sub["id"]) if r.status == 200]
    assert len(sent) == 1
    assert {r.idempotency_key for r in cancellations(fake, sub["id"])} == {
        f"a1zap-cancel-{sub['id']}"
    }
    assert (fake.get(sub["id"]) or {})["status"] == "canceled"
    assert not StripePendingCancellation.objects.exists()


def test_the_retry_command_records_each_failure_and_says_what_is_left(
    fake: StripeFake, django_capture_on_commit_callbacks: Capture
) -> None:
    paying_user(fake)
    fake.fail_with = 500
    delete_user(django_capture_on_commit_callbacks)
    retry_failing()
    StripePendingCancellation.objects.update(next_attempt_at=timezone.now())

    with pytest.raises(CommandError, match="1 cancellation is still pending"):
        retry()

    pending = StripePendingCancellation.objects.get()
    assert pending.attempts == 2
    assert "500" in (pending.last_error or "") or "unknown error" in (pending.last_error or "")


def test_a_subscription_stripe_already_cancelled_counts_as_cancelled(
    fake: StripeFake, django_capture_on_commit_callbacks: Capture
) -> None:
    sub = paying_user(fake)
    # Cancelled at Stripe, but the webhook saying so has not arrived yet.
    fake.subscription(sub["id"], customer=sub["customer"], status="canceled",
                      metadata={"user_id": "user_1"})  # fmt: skip

    delete_user(django_capture_on_commit_callbacks)
    retry()

    (cancel,) = cancellations(fake, sub["id"])
    assert cancel.status == 404  # Stripe's answer for a subscription already cancelled
    assert not StripePendingCancellation.objects.exists()


def test_a_replayed_user_deleted_sends_no_second_cancellation(
    fake: StripeFake, worker: Any
) -> None:
    sub = paying_row(fake)

    delete_user()
    wait_until(lambda: cancellations(fake, sub["id"]), "the cancellation")
    delete_user()
    retry("--all")

    assert len(cancellations(fake, sub["id"])) == 1
    assert BillingEvent.objects.filter(event_type="subscription_cancelled").count() == 1


def test_the_cancellation_is_queued_once_the_deletion_has_committed(
    fake: StripeFake, django_capture_on_commit_callbacks: Capture
) -> None:
    from a1zap.celery import app

    sub = paying_user(fake)
    app.control.purge()

    with django_capture_on_commit_callbacks() as callbacks:
        delete_user()
        queued_before_commit = queue_length()
    for callback in callbacks:
        callback()

    assert queued_before_commit == 0
    assert queue_length() == 1
    assert cancellations(fake, sub["id"]) == []


def queue_length() -> int:
    from jobs.queue_status import queued_counts

    return sum(queued_counts().values())


def test_the_cancellation_is_sent_by_the_worker_once_the_deletion_has_committed(
    fake: StripeFake, worker: Any
) -> None:
    sub = paying_row(fake)

    response = post_event(Client(), user_event("deleted", "user_1", teams=[]))

    assert response.status_code == 200
    wait_until(lambda: cancellations(fake, sub["id"]), "the cancellation")
    wait_until(lambda: not StripePendingCancellation.objects.exists(), "the row's removal")
    (cancel,) = cancellations(fake, sub["id"])
    assert cancel.status == 200
    assert not StripePendingCancellation.objects.exists()


def test_a_renewal_after_the_user_was_deleted_leaves_the_subscription_cancelled(
    fake: StripeFake, django_capture_on_commit_callbacks: Capture
) -> None:
    sub = paying_user(fake)
    fake.down = True  # Stripe never heard of the cancellation: it renews
    delete_user(django_capture_on_commit_callbacks)
    fake.down = False
    renewed = fake.subscription(sub["id"], customer=sub["customer"], metadata={"user_id": "user_1"},
                                period_start=_now() + 10)  # fmt: skip
    paid = fake.invoice(customer=sub["customer"], subscription=sub["id"], status="paid",
                        amount_due=2999, amount_paid=2999)  # fmt: skip

    updated = deliver(fake.event("customer.subscription.updated", renewed, created=_now() + 10))
    invoice = deliver(fake.event("invoice.paid", paid, created=_now() + 11))

    assert updated.json()["outcome"] == "recorded"
    assert invoice.json()["outcome"] == "recorded"
    row = UserSubscription.objects.get(user_id="user_1")
    assert (row.plan_id, row.status, row.max_total_agents) == ("free", "cancelled", 2)


def test_a_subscription_bought_after_the_user_was_deleted_is_cancelled_at_stripe(
    fake: StripeFake, django_capture_on_commit_callbacks: Capture
) -> None:
    # A checkout opened before the deletion and completed after it.
    delete_user(django_capture_on_commit_callbacks, "user_late")
    customer = fake.customer(metadata={"user_id": "user_late"})
    sub = fake.subscription(customer=customer["id"], metadata={"user_id": "user_late"})

    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(fake.event("customer.subscription.created", sub))
    retry()

    assert response.json()["outcome"] == "recorded"
    row = UserSubscription.objects.get(user_id="user_late")
    assert (row.plan_id, row.status) == ("free", "cancelled")
    (cancel,) = cancellations(fake, sub["id"])
    assert cancel.status == 200
    assert (fake.get(sub["id"]) or {})["status"] == "canceled"


def test_an_event_for_a_subscription_that_ended_cannot_bring_it_back(fake: StripeFake) -> None:
    sub = paying_user(fake)
    ended = fake.subscription(sub["id"], customer=sub["customer"], status="canceled",
                              metadata={"user_id": "user_1"})  # fmt: skip
    deliver(fake.event("customer.subscription.deleted", ended, created=_now()))
    stale = fake.subscription(sub["id"], customer=sub["customer"], metadata={"user_id": "user_1"})
    fresh = fake.subscription(customer=sub["customer"], metadata={"user_id": "user_1"},
                              lookup_key="a1zap_enterprise_month")  # fmt: skip
    checkout = fake.checkout_session(
        customer=sub["customer"], subscription=fresh["id"], client_reference_id="user_1",
        metadata={"user_id": "user_1"},
    )  # fmt: skip

    revived = deliver(fake.event("customer.subscription.updated", stale, created=_now() + 5))
    # The new purchase's checkout may arrive before its subscription does.
    completed = deliver(fake.event("checkout.session.completed", checkout, created=_now() + 8))
    bought = deliver(fake.event("customer.subscription.created", fresh, created=_now() + 10))

    assert revived.json()["outcome"] == "recorded"
    assert completed.status_code == 200
    assert bought.json()["outcome"] == "applied"
    row = UserSubscription.objects.get(user_id="user_1")
    # A new subscription is a new purchase: that one does count.
    assert (row.plan_id, row.status, row.stripe_subscription_id) == (
        "enterprise", "active", fresh["id"],
    )  # fmt: skip


def test_the_retry_command_with_nothing_pending_calls_no_stripe(fake: StripeFake) -> None:
    out = retry()

    assert "0 cancelled" in out
    assert fake.requests == []


def test_pending_cancellations_are_kept_in_a_table_with_database_defaults() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stripe_pending_cancellations (stripe_subscription_id, user_id) "
            "VALUES ('sub_raw', 'user_raw') RETURNING attempts, last_error, "
            "created_at IS NOT NULL, next_attempt_at <= statement_timestamp()"
        )
        assert cursor.fetchone() == (0, None, True, True)


def test_users_deleted_before_the_fix_get_their_cancellations_queued() -> None:
    import importlib

    from django.db import connection

    migration = importlib.import_module("billing.migrations.0006_pending_stripe_cancellations")
    gone = UserSubscription.objects.create(
        user_id="user_gone", plan_id="pro", status="active", stripe_subscription_id="sub_gone"
    )
    UserSubscription.objects.create(user_id="user_here", stripe_subscription_id="sub_here")
    BillingEvent.objects.create(
        user_id="user_gone", event_type="subscription_cancelled", subscription=gone,
        description="stack_auth_user_deleted", metadata={"reason": "stack_auth_user_deleted"},
    )  # fmt: skip

    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL_DELETED_USERS)

    assert UserSubscription.objects.get(user_id="user_gone").user_deleted_at is not None
    assert UserSubscription.objects.get(user_id="user_here").user_deleted_at is None
    assert list(StripePendingCancellation.objects.values_list("pk", "user_id")) == [
        ("sub_gone", "user_gone")
    ]
