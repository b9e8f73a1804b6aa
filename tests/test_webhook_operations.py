"""Running webhooks for real: retries over about a day without holding the broker for hours,
replays by the owner, an endpoint that fails for days disabled and its owner told, a limit on
pings, and a worker killed in the middle of a delivery."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import StackUser
from agents.services import agent_update
from jobs.retrying import retry_ceiling
from notifications.delivery import delivery_attempt
from notifications.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from notifications.services import endpoint_disabled_email, endpoint_health_record
from notifications.tasks import webhook_deliveries_sweep
from tests.background import wait_until, worker_process
from tests.test_webhooks import ENDPOINTS, new_agent, receiver, register, verified
from tests.webhook_receiver import Reply, WebhookReceiver

pytestmark = pytest.mark.django_db
__all__ = ["receiver"]
Headers = Callable[..., dict[str, str]]


def test_the_retries_span_about_a_day_by_default() -> None:
    from django.conf import settings

    ceilings = [
        retry_ceiling(
            attempt, first=settings.WEBHOOK_RETRY_FIRST_DELAY, cap=settings.WEBHOOK_RETRY_MAX_DELAY
        )
        for attempt in range(1, settings.WEBHOOK_MAX_RETRIES + 1)
    ]
    # Each wait is between half its ceiling and its ceiling (the jitter).
    shortest, longest = sum(ceilings) / 2 / 3600, sum(ceilings) / 3600
    assert 15 <= shortest <= 24 <= longest <= 36


def test_a_long_wait_is_left_to_the_sweep_not_held_in_the_broker(
    receiver: WebhookReceiver, settings: SettingsWrapper
) -> None:
    from notifications.tasks import webhook_deliver

    settings.WEBHOOK_RETRY_FIRST_DELAY = 3600.0
    receiver.script = [Reply(503)]
    register(receiver)
    new_agent()
    delivery = WebhookDelivery.objects.get()
    # Run as the worker would (no retry is raised: nothing is put back on the queue).
    summary = webhook_deliver.run(delivery_id=str(delivery.pk))
    assert "the sweep sends it" in summary
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at > timezone.now() + dt.timedelta(minutes=25)


def test_an_owner_replays_one_event_or_everything_since_a_time(
    client: Client, owner_headers: Headers, receiver: WebhookReceiver
) -> None:
    endpoint, _ = register(receiver)
    agent_update(agent=new_agent(), name="Renamed")
    first, second = WebhookEvent.objects.order_by("created_at", "id")
    for delivery in WebhookDelivery.objects.all():
        delivery_attempt(delivery_id=str(delivery.pk))
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 2
    # A new endpoint never received them: a replay sends them there too.
    later, _ = register(receiver, event_types=["agent.created", "agent.updated"])
    url = f"{ENDPOINTS}{later.pk}/replay/"

    one = client.post(url, {"event_id": second.id}, content_type="application/json",
                      **owner_headers())  # fmt: skip
    assert (one.status_code, one.json()) == (202, {"replayed": 1})
    every = client.post(url, {"since": (timezone.now() - dt.timedelta(hours=1)).isoformat()},
                        content_type="application/json", **owner_headers())  # fmt: skip
    assert (every.status_code, every.json()) == (202, {"replayed": 2})
    again = client.post(f"{ENDPOINTS}{endpoint.pk}/replay/", {"event_id": first.id},
                        content_type="application/json", **owner_headers())  # fmt: skip
    assert again.json() == {"replayed": 1}
    replayed = WebhookDelivery.objects.get(event=first, endpoint=endpoint)
    assert (replayed.status, replayed.attempts) == (DeliveryStatus.PENDING, 0)
    assert WebhookDelivery.objects.filter(endpoint=later).count() == 2  # reset, not doubled


def test_bad_replays_are_refused_and_another_owners_event_is_404(
    client: Client, owner_headers: Headers, receiver: WebhookReceiver
) -> None:
    endpoint, _ = register(receiver)
    register(receiver, owner="user_2")
    new_agent(owner="user_2", handle="theirs")
    theirs = WebhookEvent.objects.get()
    url = f"{ENDPOINTS}{endpoint.pk}/replay/"
    for body in ({}, {"event_id": theirs.id, "since": timezone.now().isoformat()},
                 {"since": "yesterday"}, {"events": "all"}):  # fmt: skip
        answer = client.post(url, body, content_type="application/json", **owner_headers())
        assert answer.status_code == 400, body
        assert answer.json()["code"] == "validation_error"
    answer = client.post(url, {"event_id": theirs.id}, content_type="application/json",
                         **owner_headers())  # fmt: skip
    assert answer.status_code == 404
    assert not WebhookDelivery.objects.filter(endpoint=endpoint).exists()
    assert client.post(url, {"event_id": theirs.id}, content_type="application/json",
                       **owner_headers("user_3")).status_code == 404  # fmt: skip


def test_pings_are_limited_per_endpoint(
    client: Client, owner_headers: Headers, receiver: WebhookReceiver, settings: SettingsWrapper
) -> None:
    settings.WEBHOOK_ACTIONS_PER_MINUTE = 3
    endpoint, _ = register(receiver)
    other, _ = register(receiver)
    codes = [
        client.post(f"{ENDPOINTS}{endpoint.pk}/ping/", **owner_headers()).status_code
        for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]
    limited = client.post(f"{ENDPOINTS}{endpoint.pk}/ping/", **owner_headers())
    assert limited.json()["code"] == "throttled"
    assert int(limited.headers["Retry-After"]) > 0
    assert client.post(f"{ENDPOINTS}{other.pk}/ping/", **owner_headers()).status_code == 202
    assert WebhookEvent.objects.filter(type="ping").count() == 4


def test_an_endpoint_failing_for_days_is_disabled_once_and_its_owner_emailed(
    receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    StackUser.objects.create(id="user_1", email="owner@example.com")
    endpoint, _ = register(receiver)
    assert endpoint_health_record(endpoint.pk, succeeded=False) is False
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    assert endpoint.enabled
    # A success in between starts the count afresh.
    endpoint_health_record(endpoint.pk, succeeded=True)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None

    receiver.script = [Reply(500)]
    new_agent()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - dt.timedelta(days=6)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        delivery_attempt(delivery_id=str(WebhookDelivery.objects.get().pk))
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_at is not None) == (False, True)
    assert len(callbacks) == 1
    assert endpoint_health_record(endpoint.pk, succeeded=False) is False  # disabled once
    assert endpoint_disabled_email(endpoint_id=endpoint.pk) == "emailed owner@example.com"
    [email] = mail.outbox
    assert endpoint.url in email.body
    # Its owner enables it again: failures start afresh.
    from notifications.services import endpoint_update

    endpoint = endpoint_update(endpoint_id=endpoint.pk, enabled=True)
    assert (endpoint.failing_since, endpoint.disabled_at) == (None, None)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_worker(
    receiver: WebhookReceiver,
) -> None:
    from a1zap.celery import app

    app.control.purge()
    _endpoint, secret = register(receiver)
    env = {
        "WEBHOOK_ALLOW_INSECURE_TARGETS": "true", "WEBHOOK_TIMEOUT_SECONDS": "1",
        "WEBHOOK_CLAIM_MARGIN_SECONDS": "1", "WEBHOOK_RETRY_FIRST_DELAY": "0.2",
        "WEBHOOK_RETRY_MAX_DELAY": "0.5", "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_TASK_TIME_LIMIT": "2", "JOBS_RETRY_MAX_DELAY": "0.5",
        "CELERY_BROKER_TRANSPORT_OPTIONS": '{"unacked_restore_interval": 1, '
                                           '"unacked_restore_throttle": 1}',
    }  # fmt: skip
    # The first attempt reaches the receiver, which does not answer before the kill.
    receiver.script = [Reply(pause=8)]
    first = worker_process(**env)
    try:
        new_agent()
        wait_until(lambda: receiver.received, "the first attempt in flight")
        first.kill()
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    second = worker_process(**env)

    def delivered() -> Any:
        # What beat does every minute: queue what is due (the claim keeps it sent once).
        webhook_deliveries_sweep.run()
        return WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).first()

    try:
        delivery = wait_until(delivered, "the delivery, by the second worker", deadline=60)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert len(receiver.received) == 2
    assert {received.headers["webhook-id"] for received in receiver.received} == {delivery.event_id}
    for received in receiver.received:
        verified(secret, received)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_claimed_while_another_to_its_endpoint_holds_the_endpoint_row(
    receiver: WebhookReceiver,
) -> None:
    import threading

    from django.db import connection, transaction

    from notifications.delivery import _claim

    endpoint, _ = register(receiver)
    new_agent()
    delivery = WebhookDelivery.objects.get()
    locked, release = threading.Event(), threading.Event()

    def finishing_another_delivery() -> None:
        try:
            with transaction.atomic():
                WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=finishing_another_delivery)
    holder.start()
    try:
        assert locked.wait(10)
        assert _claim(str(delivery.pk), due_only=True) is not None
    finally:
        release.set()
        holder.join(10)


def test_old_events_are_pruned_with_their_deliveries_and_log_in_one_cascade(
    receiver: WebhookReceiver,
) -> None:
    from notifications.models import WebhookAttempt
    from notifications.services import endpoint_delete, webhook_events_prune

    endpoint, _ = register(receiver)
    agent_update(agent=new_agent(), name="Renamed")
    for delivery in WebhookDelivery.objects.all():
        delivery_attempt(delivery_id=str(delivery.pk))
    old, recent = WebhookEvent.objects.order_by("created_at", "id")
    WebhookEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=31))
    deleted, _cutoff = webhook_events_prune(batch_size=1)
    assert deleted == 1
    assert list(WebhookEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert list(WebhookDelivery.objects.values_list("event_id", flat=True)) == [recent.pk]
    assert WebhookAttempt.objects.count() == 1
    endpoint_delete(endpoint_id=endpoint.pk)
    assert (WebhookDelivery.objects.count(), WebhookAttempt.objects.count()) == (0, 0)
    assert WebhookEvent.objects.count() == 1  # the event stays (other endpoints, replays)


def test_a_deleted_user_is_sent_nothing_more_and_their_endpoints_are_gone(
    receiver: WebhookReceiver,
) -> None:
    from accounts.services import stack_user_delete
    from notifications.models import NotificationSettings

    register(receiver)
    new_agent()
    NotificationSettings.objects.create(owner_id="user_1", usage_thresholds=[90])
    register(receiver, owner="user_2")
    new_agent(owner="user_2", handle="stays")
    stack_user_delete(user_id="user_1")
    assert list(WebhookEndpoint.objects.values_list("owner_id", flat=True)) == ["user_2"]
    assert set(WebhookEvent.objects.values_list("owner_id", flat=True)) == {"user_2"}
    assert not NotificationSettings.objects.exists()


def test_a_disabled_endpoint_is_sent_nothing_more_but_a_ping_and_a_replay_after_enabling(
    client: Client, owner_headers: Headers, receiver: WebhookReceiver
) -> None:
    from notifications.services import endpoint_update

    endpoint, _ = register(receiver)
    new_agent()
    endpoint_update(endpoint_id=endpoint.pk, enabled=False)
    delivery = WebhookDelivery.objects.get()
    assert delivery_attempt(delivery_id=str(delivery.pk)).retry_in is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempt_log.get().error == "The endpoint is disabled."
    assert receiver.received == []
    assert client.post(f"{ENDPOINTS}{endpoint.pk}/ping/", **owner_headers()).status_code == 202
    ping = WebhookDelivery.objects.get(event__type="ping")
    delivery_attempt(delivery_id=str(ping.pk))
    assert len(receiver.received) == 1
    endpoint_update(endpoint_id=endpoint.pk, enabled=True)
    client.post(f"{ENDPOINTS}{endpoint.pk}/replay/", {"event_id": delivery.event_id},
                content_type="application/json", **owner_headers())  # fmt: skip
    delivery_attempt(delivery_id=str(delivery.pk))
    assert len(receiver.received) == 2
