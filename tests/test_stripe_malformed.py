"""A Stripe event with a valid signature but a body we cannot read is refused (400) and
changes nothing: no ledger row, no subscription change, nothing in dj-stripe's tables."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from billing.models import BillingEvent, UserSubscription
from invoicing.models import StripeWebhookEvent
from invoicing.stripe_inbox import stripe_event_process
from tests.conftest import STRIPE_WEBHOOK_SECRET
from tests.stripe_fake import StripeFake, sign
from tests.test_billing_stripe import deliver, subscription_event

pytestmark = pytest.mark.django_db

Mutation = Callable[[dict[str, Any]], Any]


def post_signed(payload: bytes) -> Any:
    return Client().post(
        "/stripe/webhook/", payload, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, STRIPE_WEBHOOK_SECRET),
    )  # fmt: skip


def _set(path: str, value: Any) -> Mutation:
    """Set a dotted path (`data.object.items.data.0.price`) of the event to `value`."""

    def mutate(event: dict[str, Any]) -> dict[str, Any]:
        *parents, last = path.split(".")
        node: Any = event
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return event

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(event: dict[str, Any]) -> dict[str, Any]:
        *parents, last = path.split(".")
        node: Any = event
        for part in parents:
            node = node[part]
        del node[last]
        return event

    return mutate


OBJ = "data.object"
MALFORMED: dict[str, Mutation] = {
    "no data.object": _set("data", {}),
    "data.object a list": _set(OBJ, [1, 2]),
    "data a string": _set("data", "object"),
    "no id": _drop("id"),
    "id a number": _set("id", 7),
    "type a list": _set("type", ["customer.subscription.updated"]),
    "created a string": _set("created", "yesterday"),
    "created past year 9999": _set("created", 10**12),
    "object id missing": _drop(f"{OBJ}.id"),
    "metadata a string": _set(f"{OBJ}.metadata", "user_1"),
    "metadata.user_id an object": _set(f"{OBJ}.metadata", {"user_id": {"id": "user_1"}}),
    "user_id with a NUL": _set(f"{OBJ}.metadata", {"user_id": "user_1\u0000"}),
    "user_id a lone surrogate": _set(f"{OBJ}.metadata", {"user_id": "\ud800"}),
    "status a list": _set(f"{OBJ}.status", ["active"]),
    "items a string": _set(f"{OBJ}.items", "many"),
    "items.data a dict": _set(f"{OBJ}.items.data", {"0": {}}),
    "item a string": _set(f"{OBJ}.items.data.0", "si_1"),
    "price a string": _set(f"{OBJ}.items.data.0.price", "price_1"),
    "lookup_key a number": _set(f"{OBJ}.items.data.0.price.lookup_key", 5),
    "period end a string": _set(f"{OBJ}.items.data.0.current_period_end", "soon"),
    "period end a boolean": _set(f"{OBJ}.current_period_end", True),
    "canceled_at negative": _set(f"{OBJ}.canceled_at", -5),
    "cancel_at_period_end a string": _set(f"{OBJ}.cancel_at_period_end", "yes"),
    "customer a list": _set(f"{OBJ}.customer", ["cus_1"]),
    "customer object without id": _set(f"{OBJ}.customer", {"object": "customer"}),
}


@pytest.fixture
def paying(fake: StripeFake) -> dict[str, Any]:
    """user_1 on pro; return a `customer.subscription.updated` that would cancel it."""
    created = subscription_event(fake, "created", sub_id="sub_bad")
    assert deliver(created).json()["outcome"] == "applied"
    return subscription_event(fake, "updated", sub_id="sub_bad", status="canceled")


def _state() -> tuple[Any, ...]:
    from djstripe.models import Event

    row = UserSubscription.objects.values().get(user_id="user_1")
    stored = StripeWebhookEvent.objects.count()
    return row, BillingEvent.objects.count(), Event.objects.count(), stored


@pytest.mark.parametrize("mutation", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_signed_but_malformed_event_is_400_and_changes_nothing(
    fake: StripeFake, paying: dict[str, Any], mutation: Mutation
) -> None:
    before = _state()
    event = mutation(json.loads(json.dumps(paying)))

    response = post_signed(json.dumps(event).encode())

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["detail"]
    assert _state() == before


@pytest.mark.parametrize(
    "payload",
    [b"[1, 2]", b'"event"', b"{not json", b"[" * 100_000 + b"]" * 100_000],
    ids=["a list", "a string", "not JSON", "nested 100000 deep"],
)
def test_a_signed_body_that_is_not_an_event_object_is_400(
    fake: StripeFake, paying: dict[str, Any], payload: bytes
) -> None:
    before = _state()

    response = post_signed(payload)

    assert response.status_code == 400
    assert response.json()["code"] in {"validation_error", "malformed_request"}
    assert _state() == before


def test_an_invoice_with_an_amount_the_ledger_cannot_hold_is_400(
    fake: StripeFake, paying: dict[str, Any]
) -> None:
    before = _state()
    invoice = fake.invoice(customer=paying["data"]["object"]["customer"], subscription="sub_bad",
                           status="paid", amount_due=10**12, amount_paid=10**12)  # fmt: skip

    response = deliver(fake.event("invoice.paid", invoice))

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert _state() == before


def test_the_unmodified_event_is_stored_and_applied(
    fake: StripeFake, paying: dict[str, Any]
) -> None:
    response = post_signed(json.dumps(paying).encode())

    assert response.json()["outcome"] == "queued"
    assert stripe_event_process(stripe_event_id=paying["id"]) == "applied"
    assert UserSubscription.objects.get(user_id="user_1").status == "cancelled"
