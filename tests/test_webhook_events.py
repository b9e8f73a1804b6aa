"""The events beyond an agent's lifecycle: conversations, messages (opt-in), subscriptions,
failed payments and integrations in error, each written with its change and delivered signed."""

import time
from typing import Any

import pytest
from django.db import transaction

from agents.selectors import agent_owner_subquery
from billing.services import subscription_change_plan
from conversations.services import conversation_open, message_post
from integrations.services import integration_create, integration_update
from notifications.api.event_schemas import EVENT_DATA
from notifications.events import EVENT_TYPES, event_emit
from notifications.models import WebhookDelivery, WebhookEvent
from tests.background import wait_until
from tests.stripe_fake import StripeFake
from tests.test_billing_stripe import deliver, subscription_event
from tests.test_webhooks import new_agent, receiver, register, verified
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.django_db
__all__ = ["receiver"]


def events_of(event_type: str) -> list[dict[str, Any]]:
    """The stored bodies of this type, each checked against the schema the API documents."""
    bodies = [
        event.payload
        for event in WebhookEvent.objects.filter(type=event_type).order_by("created_at", "id")
    ]
    for body in bodies:
        assert set(body) == {"id", "type", "version", "timestamp", "data"}
        shape = EVENT_DATA[event_type](data=body["data"])
        assert shape.is_valid(), shape.errors
        assert set(body["data"]) == set(shape.fields), "undocumented or missing fields"
    return bodies


def test_every_event_type_has_a_documented_body() -> None:
    assert set(EVENT_DATA) == {*EVENT_TYPES, "ping"}


def test_agent_events_match_their_documented_body(receiver: WebhookReceiver) -> None:
    register(receiver)
    new_agent()
    assert len(events_of("agent.created")) == 1


def test_a_new_conversation_is_an_event_and_finding_its_thread_again_is_not(
    receiver: WebhookReceiver,
) -> None:
    register(receiver)
    agent = new_agent()
    conversation, created = conversation_open(
        agent_id=agent.pk, channel="web", external_user_id="visitor-1", thread_id="t-1"
    )
    again, created_again = conversation_open(agent_id=agent.pk, channel="web", thread_id="t-1")
    assert (created, created_again, again.pk) == (True, False, conversation.pk)
    [body] = events_of("conversation.created")
    assert body["data"] == {
        "id": str(conversation.pk),
        "agent_id": str(agent.pk),
        "channel": "web",
        "external_user_id": "visitor-1",
        "thread_id": "t-1",
        "status": "active",
        "started_at": body["data"]["started_at"],
    }
    assert "metadata" not in body["data"]


def test_messages_reach_only_endpoints_that_opt_in_and_a_retry_is_not_sent_twice(
    receiver: WebhookReceiver,
) -> None:
    everything, _ = register(receiver)
    opted_in, _ = register(receiver, event_types=["message.created"])
    agent = new_agent()
    conversation, _ = conversation_open(agent_id=agent.pk, channel="web")
    message, _ = message_post(
        conversation=conversation, role="user", content="Hello", client_message_id="m-1"
    )
    message_post(conversation=conversation, role="user", content="Hello", client_message_id="m-1")
    [body] = events_of("message.created")
    assert body["data"]["id"] == str(message.pk)
    assert body["data"]["conversation_id"] == str(conversation.pk)
    assert (body["data"]["role"], body["data"]["content"]) == ("user", "Hello")
    [delivery] = WebhookDelivery.objects.filter(event_id=body["id"])
    assert delivery.endpoint_id == opted_in.pk != everything.pk


def test_a_message_nobody_listens_to_costs_one_query_and_no_row(
    django_assert_num_queries: Any,
) -> None:
    agent = new_agent()
    conversation, _ = conversation_open(agent_id=agent.pk, channel="web")
    with transaction.atomic(), django_assert_num_queries(1):
        event_emit(owner_id=agent_owner_subquery(agent.pk), event_type="message.created", data={})
    message_post(conversation=conversation, role="user", content="Hello")
    assert not WebhookEvent.objects.exists()


def test_a_message_that_rolls_back_sends_nothing(receiver: WebhookReceiver) -> None:
    register(receiver, event_types=["message.created"])
    agent = new_agent()
    conversation, _ = conversation_open(agent_id=agent.pk, channel="web")
    written: list[int] = []

    def failing_request() -> None:
        with transaction.atomic():
            message_post(conversation=conversation, role="user", content="Hi")
            written.append(len(events_of("message.created")))
            raise RuntimeError("the request fails after the message was stored")

    with pytest.raises(RuntimeError):
        failing_request()
    assert written == [1]
    assert events_of("message.created") == []


def test_a_plan_change_is_a_subscription_updated_event_with_what_changed(
    receiver: WebhookReceiver,
) -> None:
    register(receiver)
    subscription_change_plan(user_id="user_1", plan_id="pro", actor="staff@example.com")
    [body] = events_of("subscription.updated")
    data = body["data"]
    assert (data["owner_id"], data["plan_id"], data["reason"]) == (
        "user_1",
        "pro",
        "subscription.plan_changed",
    )
    assert "plan_id" in data["changed"]
    assert "stripe_customer_id" not in data
    assert "stripe_subscription_id" not in data


def test_a_failed_payment_is_an_event_and_a_stripe_retry_of_it_is_not(
    receiver: WebhookReceiver, fake: StripeFake
) -> None:
    register(receiver, event_types=["invoice.payment_failed", "subscription.updated"])
    created = subscription_event(fake, "created", sub_id="sub_pay")
    deliver(created)
    customer = created["data"]["object"]["customer"]
    invoice = fake.invoice(customer=customer, subscription="sub_pay", status="open",
                           amount_due=2999, amount_paid=0)  # fmt: skip
    failed = fake.event("invoice.payment_failed", invoice, created=int(time.time()) + 1)
    deliver(failed)
    deliver(failed)
    [body] = events_of("invoice.payment_failed")
    assert body["data"]["owner_id"] == "user_1"
    assert body["data"]["invoice_id"] == invoice["id"]
    assert (body["data"]["amount_due"], body["data"]["currency"]) == ("29.99", "USD")
    # The subscription went past due: that is its own event.
    assert any(event["data"]["status"] == "past_due" for event in events_of("subscription.updated"))


def test_an_integration_going_into_error_is_an_event_once(receiver: WebhookReceiver) -> None:
    register(receiver)
    agent = new_agent()
    integration = integration_create(
        agent_id=agent.pk,
        provider="slack",
        config={"bot_token": "xoxb-" + "1" * 20, "signing_secret": "s" * 32},
    )
    integration_update(integration_id=integration.pk, status="error")
    integration_update(integration_id=integration.pk, status="error")
    [body] = events_of("integration.error")
    assert body["data"]["id"] == str(integration.pk)
    assert (body["data"]["provider"], body["data"]["previous_status"]) == ("slack", "active")
    assert "config" not in body["data"]
    assert "xoxb" not in str(body)


def test_the_new_events_reach_the_receiver_signed_through_a_real_worker(
    receiver: WebhookReceiver, worker: Any
) -> None:
    _endpoint, secret = register(
        receiver, event_types=["conversation.created", "message.created", "integration.error"]
    )
    agent = new_agent()
    conversation, _ = conversation_open(agent_id=agent.pk, channel="web")
    message_post(conversation=conversation, role="user", content="Hello")
    integration = integration_create(
        agent_id=agent.pk,
        provider="slack",
        config={"bot_token": "xoxb-" + "2" * 20, "signing_secret": "s" * 32},
    )
    integration_update(integration_id=integration.pk, status="error")
    wait_until(lambda: len(receiver.received) >= 3, "three deliveries")
    bodies = [verified(secret, received) for received in receiver.received]
    assert sorted(body["type"] for body in bodies) == [
        "conversation.created",
        "integration.error",
        "message.created",
    ]
