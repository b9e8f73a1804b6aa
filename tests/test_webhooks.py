"""Outgoing webhooks: owners register endpoints, agent changes reach them signed (checked
with the `standardwebhooks` library, not our code), once per event across retries, and a
change that rolls back sends nothing."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from standardwebhooks.webhooks import Webhook

from agents import services as agent_services
from notifications.delivery import delivery_attempt
from notifications.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from notifications.services import endpoint_create, endpoint_rotate_secret
from tests.background import wait_until
from tests.test_admin_agents import staff_client
from tests.webhook_receiver import Reply, WebhookReceiver

pytestmark = pytest.mark.django_db
ENDPOINTS = "/api/v1/webhooks/endpoints/"
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def receiver(settings: SettingsWrapper) -> Iterator[WebhookReceiver]:
    settings.WEBHOOK_ALLOW_INSECURE_TARGETS = True
    server = WebhookReceiver()
    server.serve()
    yield server
    server.stop()


def verified(secret: str, received: Any) -> Any:
    return Webhook(secret).verify(received.body, received.headers)


def register(receiver: WebhookReceiver, owner: str = "user_1", **fields: Any) -> tuple[Any, str]:
    return endpoint_create(owner_id=owner, url=receiver.base_url + "/hooks", **fields)


def new_agent(owner: str = "user_1", handle: str = "helper") -> Any:
    agent, _key = agent_services.agent_create(
        owner_id=owner, name="Helper", handle=handle, agent_type="personal"
    )
    return agent


# --- the endpoints API -----------------------------------------------------------------------


def test_an_owner_registers_an_endpoint_and_sees_its_secret_only_once(
    client: Client, owner_headers: Headers, receiver: WebhookReceiver
) -> None:
    created = client.post(
        ENDPOINTS,
        {"url": receiver.base_url + "/hooks", "event_types": ["agent.created"]},
        content_type="application/json",
        **owner_headers(),
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["agent.created"]
    assert body["enabled"] is True
    listed = client.get(ENDPOINTS, **owner_headers()).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert client.get(f"{ENDPOINTS}{body['id']}/", **owner_headers("user_2")).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/",
        "https://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/",
        "http://example.com/",
    ],
)
def test_endpoints_on_our_own_network_or_not_https_are_refused(
    client: Client, owner_headers: Headers, url: str
) -> None:
    response = client.post(
        ENDPOINTS, {"url": url}, content_type="application/json", **owner_headers()
    )
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert "url" in response.json()["errors"]
    assert not WebhookEndpoint.objects.exists()


def test_an_unknown_event_type_is_refused(client: Client, owner_headers: Headers) -> None:
    response = client.post(
        ENDPOINTS,
        {"url": "https://1.1.1.1/", "event_types": ["agent.exploded"]},
        content_type="application/json",
        **owner_headers(),
    )
    assert response.status_code == 400
    assert "event_types" in response.json()["errors"]


def test_an_owner_has_at_most_five_endpoints(
    client: Client, owner_headers: Headers, receiver: WebhookReceiver
) -> None:
    for _ in range(5):
        register(receiver)
    response = client.post(
        ENDPOINTS,
        {"url": receiver.base_url + "/six"},
        content_type="application/json",
        **owner_headers(),
    )
    assert response.status_code == 403
    assert response.json()["code"] == "webhook_endpoint_limit_reached"
    register(receiver, owner="user_2")  # another owner's count is their own


def test_an_owner_changes_and_removes_an_endpoint(
    client: Client, owner_headers: Headers, receiver: WebhookReceiver
) -> None:
    endpoint, _secret = register(receiver)
    changed = client.patch(
        f"{ENDPOINTS}{endpoint.pk}/",
        {"enabled": False, "description": "staging"},
        content_type="application/json",
        **owner_headers(),
    )
    assert changed.status_code == 200
    assert changed.json()["enabled"] is False
    assert changed.json()["description"] == "staging"
    refused = client.patch(
        f"{ENDPOINTS}{endpoint.pk}/",
        {"url": "https://10.0.0.1/"},
        content_type="application/json",
        **owner_headers(),
    )
    assert refused.status_code == 400
    assert client.delete(f"{ENDPOINTS}{endpoint.pk}/", **owner_headers()).status_code == 204
    assert not WebhookEndpoint.objects.exists()


# --- events and their delivery ------------------------------------------------------------


def test_an_agent_change_that_rolls_back_records_no_event(
    receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    register(receiver)
    written: list[int] = []

    def failing_request() -> None:
        with transaction.atomic():
            new_agent()
            written.append(WebhookEvent.objects.count())  # written with the change...
            raise RuntimeError("the request fails after the agent was created")

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        failing_request()
    assert written == [1]
    assert not WebhookEvent.objects.exists()  # ...and gone with it
    assert callbacks == []  # nothing queued


def test_only_enabled_endpoints_subscribed_to_the_type_get_the_event(
    receiver: WebhookReceiver,
) -> None:
    everything, _ = register(receiver)
    paused_only, _ = register(receiver, event_types=["agent.paused"])
    register(receiver, enabled=False)
    register(receiver, owner="user_2")
    new_agent()
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [everything.pk]
    assert paused_only.pk not in WebhookDelivery.objects.values_list("endpoint_id", flat=True)


def test_an_owner_without_endpoints_costs_no_outbox_row() -> None:
    new_agent()
    assert not WebhookEvent.objects.exists()


def test_every_agent_event_reaches_the_receiver_signed_through_a_real_worker(
    receiver: WebhookReceiver, worker: Any
) -> None:
    _endpoint, secret = register(receiver)
    agent = new_agent()
    agent_services.agent_update(agent=agent, name="Renamed")
    agent_services.agent_pause(agent=agent)
    agent_services.agent_resume(agent=agent)
    agent_services.agent_archive(agent=agent)
    agent_services.agent_delete(agent=agent)
    wait_until(lambda: len(receiver.received) >= 6, "six deliveries")
    bodies = [verified(secret, received) for received in receiver.received]
    assert sorted(body["type"] for body in bodies) == sorted(
        f"agent.{what}"
        for what in ("created", "updated", "paused", "resumed", "archived", "deleted")
    )
    for body, received in zip(bodies, receiver.received, strict=True):
        assert received.headers["webhook-id"] == body["id"]
        assert body["version"] == 1
        assert body["data"]["id"] == str(agent.pk)
        assert body["data"]["owner_id"] == "user_1"
        assert "email" not in body["data"]
    renamed = next(body for body in bodies if body["type"] == "agent.updated")
    assert renamed["data"]["name"] == "Renamed"
    wait_until(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 6,
        "six deliveries marked succeeded",
    )


def test_503s_and_a_timeout_are_retried_with_the_same_webhook_id_until_it_is_accepted(
    receiver: WebhookReceiver, settings: SettingsWrapper, worker: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.script = [Reply(503), Reply(pause=1.5), Reply(503), Reply(200)]
    _endpoint, secret = register(receiver)
    new_agent()
    delivery = wait_until(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).first(),
        "the delivery to succeed",
    )
    assert len(receiver.received) == 4
    ids = {received.headers["webhook-id"] for received in receiver.received}
    assert ids == {delivery.event_id}
    for received in receiver.received:
        verified(secret, received)
    attempts = list(delivery.attempt_log.order_by("id"))
    assert [a.status_code for a in attempts] == [503, None, 503, 200]
    assert "Timed out" in attempts[1].error
    assert attempts[3].response_body == "ok"
    assert attempts[3].succeeded


def test_a_4xx_answer_is_not_retried(receiver: WebhookReceiver) -> None:
    receiver.script = [Reply(410)]
    register(receiver)
    new_agent()
    delivery = WebhookDelivery.objects.get()
    outcome = delivery_attempt(delivery_id=str(delivery.pk))
    assert outcome.retry_in is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery_attempt(delivery_id=str(delivery.pk), due_only=False).summary == "nothing to do"
    assert len(receiver.received) == 1


def test_a_429_is_retried_no_sooner_than_its_retry_after(
    receiver: WebhookReceiver, settings: SettingsWrapper
) -> None:
    settings.JOBS_RETRY_FIRST_DELAY = 1.0
    settings.JOBS_RETRY_MAX_DELAY = 600.0
    receiver.script = [Reply(429, headers={"Retry-After": "120"})]
    register(receiver)
    new_agent()
    delivery = WebhookDelivery.objects.get()
    outcome = delivery_attempt(delivery_id=str(delivery.pk))
    assert outcome.retry_in is not None
    assert outcome.retry_in >= 120
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    # Not due yet: a sweep or a redelivered message sends nothing.
    assert delivery_attempt(delivery_id=str(delivery.pk)).summary == "nothing to do"
    assert len(receiver.received) == 1


def test_a_target_that_turned_private_is_refused_at_delivery(
    receiver: WebhookReceiver, settings: SettingsWrapper
) -> None:
    endpoint, _ = register(receiver)
    new_agent()
    # Insecure targets off again: the receiver on 127.0.0.1 is loopback, as a name that came to
    # resolve to loopback would be.
    settings.WEBHOOK_ALLOW_INSECURE_TARGETS = False
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="https://localhost:1/")
    delivery = WebhookDelivery.objects.get()
    outcome = delivery_attempt(delivery_id=str(delivery.pk))
    assert outcome.retry_in is None
    attempt = delivery.attempt_log.get()
    assert attempt.error.startswith("Refused:")
    assert attempt.status_code is None
    assert receiver.received == []


def test_after_a_rotation_both_secrets_sign_until_the_grace_ends(
    receiver: WebhookReceiver, settings: SettingsWrapper
) -> None:
    endpoint, old = register(receiver)
    _endpoint, new = endpoint_rotate_secret(endpoint_id=endpoint.pk)
    new_agent()
    delivery_attempt(delivery_id=str(WebhookDelivery.objects.get().pk))
    (received,) = receiver.received
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    verified(old, received)
    verified(new, received)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at="2000-01-01T00:00:00Z"
    )
    agent_services.agent_pause(agent=agent_services.A1Agent.objects.get())
    delivery = WebhookDelivery.objects.get(event__type="agent.paused")
    delivery_attempt(delivery_id=str(delivery.pk))
    verified(new, receiver.received[1])
    with pytest.raises(Exception, match="No matching signature"):
        verified(old, receiver.received[1])


def test_rotate_and_ping_through_the_api_and_read_the_delivery_log(
    client: Client, owner_headers: Headers, receiver: WebhookReceiver, worker: Any
) -> None:
    endpoint, _ = register(receiver)
    rotated = client.post(f"{ENDPOINTS}{endpoint.pk}/rotate-secret/", **owner_headers())
    assert rotated.status_code == 200
    secret = rotated.json()["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None
    pinged = client.post(f"{ENDPOINTS}{endpoint.pk}/ping/", **owner_headers())
    assert pinged.status_code == 202
    wait_until(lambda: receiver.received, "the ping")
    body = verified(secret, receiver.received[0])
    assert body["type"] == "ping"
    assert body["id"] == pinged.json()["event_id"]
    log = wait_until(
        lambda: client.get(
            f"/api/v1/webhooks/deliveries/?endpoint={endpoint.pk}", **owner_headers()
        ).json()["results"],
        "the attempt in the log",
    )
    assert log[0]["event_id"] == body["id"]
    assert log[0]["status_code"] == 200
    assert log[0]["delivery_status"] == "succeeded"
    assert log[0]["latency_ms"] >= 0
    other = client.get(
        f"/api/v1/webhooks/deliveries/?endpoint={endpoint.pk}", **owner_headers("user_2")
    )
    assert other.status_code == 404
    missing = client.get("/api/v1/webhooks/deliveries/", **owner_headers())
    assert missing.status_code == 400


def test_the_sweep_sends_a_committed_event_whose_message_was_lost(
    receiver: WebhookReceiver, worker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _endpoint, secret = register(receiver)
    with django_capture_on_commit_callbacks(execute=False):
        new_agent()  # committed; its message never reaches the broker
    from notifications.tasks import webhook_deliveries_sweep

    assert webhook_deliveries_sweep() == "1 queued"
    wait_until(lambda: receiver.received, "the swept delivery")
    assert json.loads(receiver.received[0].body)["type"] == "agent.created"
    verified(secret, receiver.received[0])


# --- the admin ---------------------------------------------------------------------------

DELIVERIES_ADMIN = "/admin/notifications/webhookdelivery/"


def failed_and_succeeded(receiver: WebhookReceiver) -> tuple[Any, Any]:
    receiver.script = [Reply(200), Reply(400)]
    register(receiver)
    agent = new_agent()
    agent_services.agent_pause(agent=agent)
    first, second = WebhookDelivery.objects.order_by("created_at", "id")
    for delivery in (first, second):
        delivery_attempt(delivery_id=str(delivery.pk))
    succeeded = WebhookDelivery.objects.get(status=DeliveryStatus.SUCCEEDED)
    failed = WebhookDelivery.objects.get(status=DeliveryStatus.FAILED)
    return succeeded, failed


def test_staff_see_deliveries_failed_first_with_their_attempts(
    receiver: WebhookReceiver,
) -> None:
    succeeded, failed = failed_and_succeeded(receiver)
    client, _ = staff_client("support")
    listing = client.get(DELIVERIES_ADMIN)
    assert listing.status_code == 200
    text = listing.content.decode()
    assert text.index(failed.event_id) < text.index(succeeded.event_id)
    assert "Send the selected deliveries again" not in text  # support only reads
    page = client.get(f"{DELIVERIES_ADMIN}{failed.pk}/change/").content.decode()
    assert "400" in page
    assert "ok" in page  # the response body, truncated


def test_an_admin_sends_a_failed_delivery_again_with_its_retries_afresh(
    receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    _succeeded, failed = failed_and_succeeded(receiver)
    support, _ = staff_client("support")
    refused = support.post(
        DELIVERIES_ADMIN, {"action": "replay_deliveries", "_selected_action": [str(failed.pk)]}
    )
    assert refused.status_code in (200, 302)
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.FAILED
    client, _ = staff_client("admin")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            DELIVERIES_ADMIN,
            {"action": "replay_deliveries", "_selected_action": [str(failed.pk)]},
        )
    assert response.status_code == 302
    assert len(callbacks) == 1
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (DeliveryStatus.PENDING, 0)
    delivery_attempt(delivery_id=str(failed.pk))
    assert [r.headers["webhook-id"] for r in receiver.received].count(failed.event_id) == 2
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.SUCCEEDED
