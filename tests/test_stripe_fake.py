"""The Stripe fake speaks Stripe well enough for the stripe SDK and for dj-stripe.

Part 1 drives the fake with the stripe SDK (`StripeClient`); part 2 checks webhook signatures;
part 3 feeds the six event types we handle to `djstripe.models.Event.process` against the fake.
"""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from pytest_django.fixtures import Settings as SettingsWrapper

from tests.stripe_fake import StripeFake, decode_form

KEY = "sk_test_51" + "A1zapFakeKey0123456789ab"  # dj-stripe wants 24+ alphanumerics
WEBHOOK_SECRET = "whsec_test_a1zap_fake"


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[StripeFake]:
    fake = StripeFake()
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture
def fake(
    stripe_server: StripeFake, monkeypatch: pytest.MonkeyPatch, settings: SettingsWrapper
) -> StripeFake:
    """The fake, reset, with the stripe SDK's globals and the Stripe settings pointed at it."""
    stripe_server.reset()
    # dj-stripe copies STRIPE_API_HOST into stripe.api_base only when djstripe.settings is
    # imported, so changing the setting in a test does nothing: patch the SDK global itself.
    monkeypatch.setattr(stripe, "api_base", stripe_server.base_url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    settings.STRIPE_API_HOST = stripe_server.base_url
    settings.STRIPE_SECRET_KEY = KEY
    settings.STRIPE_TEST_SECRET_KEY = KEY
    settings.STRIPE_LIVE_SECRET_KEY = ""
    settings.STRIPE_LIVE_MODE = False
    return stripe_server


@pytest.fixture
def client(fake: StripeFake) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key=KEY, base_addresses={"api": fake.base_url}, max_network_retries=0
    )


# --- form decoding ---------------------------------------------------------------------------


def test_decode_form_builds_nested_params() -> None:
    assert decode_form(
        [
            ("line_items[0][price]", "price_1"),
            ("line_items[0][quantity]", "2"),
            ("line_items[1][price]", "price_2"),
            ("metadata[user_id]", "7"),
            ("lookup_keys[]", "a"),
            ("lookup_keys[]", "b"),
            ("expand[0]", "x"),
            ("mode", "subscription"),
        ]
    ) == {
        "line_items": [{"price": "price_1", "quantity": "2"}, {"price": "price_2"}],
        "metadata": {"user_id": "7"},
        "lookup_keys": ["a", "b"],
        "expand": ["x"],
        "mode": "subscription",
    }


# --- the stripe SDK against the fake ---------------------------------------------------------


def test_customer_create_and_retrieve(client: stripe.StripeClient, fake: StripeFake) -> None:
    created = client.v1.customers.create(
        params={"email": "ada@example.com", "metadata": {"user_id": "42"}}
    )
    assert created.id.startswith("cus_")
    assert created.email == "ada@example.com"
    assert created.metadata is not None
    assert created.metadata["user_id"] == "42"
    assert client.v1.customers.retrieve(created.id).email == "ada@example.com"

    (post,) = fake.requests_to("POST", "/v1/customers")
    assert post.params == {"email": "ada@example.com", "metadata": {"user_id": "42"}}
    assert ("metadata[user_id]", "42") in post.pairs
    assert post.api_key == KEY
    assert post.idempotency_key  # the SDK sends one on every POST
    assert list(fake.objects["customer"]) == [created.id]


def test_unknown_customer_is_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.retrieve("cus_nope")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"


def test_prices_listed_by_lookup_key(client: stripe.StripeClient, fake: StripeFake) -> None:
    prices = client.v1.prices.list(
        params={
            "lookup_keys": ["a1zap_pro_month", "a1zap_enterprise_year"],
            "expand": ["data.product"],
        }
    )
    by_key = {p.lookup_key: p for p in prices.data}
    assert set(by_key) == {"a1zap_pro_month", "a1zap_enterprise_year"}
    assert by_key["a1zap_pro_month"].unit_amount == 2999
    assert by_key["a1zap_enterprise_year"].unit_amount == 99990
    assert by_key["a1zap_pro_month"].currency == "usd"
    assert by_key["a1zap_pro_month"].recurring is not None
    assert by_key["a1zap_pro_month"].recurring.interval == "month"
    product: Any = by_key["a1zap_pro_month"].product
    assert product.id.startswith("prod_")
    assert product.name == "A1Zap Pro"

    (listing,) = fake.requests_to("GET", "/v1/prices")
    assert listing.params["lookup_keys"] == ["a1zap_pro_month", "a1zap_enterprise_year"]
    assert ("lookup_keys[0]", "a1zap_pro_month") in listing.pairs

    price = client.v1.prices.retrieve(fake.price_id("a1zap_pro_year"))
    assert price.unit_amount == 29990
    assert isinstance(price.product, str)
    assert client.v1.products.retrieve(price.product).name == "A1Zap Pro"
    assert client.v1.products.features.list(price.product).data == []


def test_prices_by_unknown_lookup_key_are_an_empty_list(client: stripe.StripeClient) -> None:
    assert client.v1.prices.list(params={"lookup_keys": ["nope"]}).data == []


def test_checkout_session(client: stripe.StripeClient, fake: StripeFake) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": fake.price_id("a1zap_pro_month"), "quantity": 1}],
            "success_url": "https://app.test/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.test/cancel",
            "metadata": {"user_id": "42", "plan": "pro"},
            "subscription_data": {"metadata": {"user_id": "42"}},
            "client_reference_id": "42",
        }
    )
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.url == f"https://checkout.stripe.test/c/pay/{session.id}"
    assert session.status == "open"
    assert session.amount_total == 2999
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"user_id": "42", "plan": "pro"}

    (post,) = fake.requests_to("POST", "/v1/checkout/sessions")
    assert post.params["line_items"] == [
        {"price": fake.price_id("a1zap_pro_month"), "quantity": "1"}
    ]
    assert post.params["subscription_data"] == {"metadata": {"user_id": "42"}}
    assert fake.objects["checkout.session"][session.id]["customer"] == customer.id

    fetched = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert fetched.line_items is not None
    assert fetched.line_items.data[0].price is not None
    assert fetched.line_items.data[0].price.lookup_key == "a1zap_pro_month"


def test_checkout_session_refuses_an_unknown_price(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(
            params={"mode": "subscription", "line_items": [{"price": "price_nope"}]}
        )
    assert caught.value.param == "line_items[0][price]"


def test_portal_session(client: stripe.StripeClient, fake: StripeFake) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "https://app.test/billing"}
    )
    assert portal.url.startswith("https://billing.stripe.test/p/session/")
    assert portal.return_url == "https://app.test/billing"
    assert list(fake.objects["billing_portal.session"]) == [portal.id]


def test_invoice_item_with_idempotency_key_is_created_once(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    params: Any = {
        "customer": customer.id,
        "amount": 1234,
        "currency": "usd",
        "description": "Overage 2026-05",
        "metadata": {"period": "2026-05"},
    }
    options: Any = {"idempotency_key": "overage-user42-2026-05"}
    first = client.v1.invoice_items.create(params=params, options=options)
    second = client.v1.invoice_items.create(params=params, options=options)

    assert first.id.startswith("ii_")
    assert second.id == first.id
    assert first.amount == 1234
    assert len(fake.objects["invoiceitem"]) == 1
    posts = fake.requests_to("POST", "/v1/invoiceitems")
    assert [r.idempotency_key for r in posts] == ["overage-user42-2026-05"] * 2
    assert [r.replayed for r in posts] == [False, True]

    # The same key with other parameters is refused, as Stripe does.
    with pytest.raises(stripe.IdempotencyError):
        client.v1.invoice_items.create(params={**params, "amount": 999}, options=options)
    assert len(fake.objects["invoiceitem"]) == 1


def test_missing_or_bad_api_key_is_401(fake: StripeFake) -> None:
    bad = stripe.StripeClient(
        api_key="sk_live_nope", base_addresses={"api": fake.base_url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.create(params={"email": "x@example.com"})
    assert fake.requests[-1].status == 401
    assert fake.objects["customer"] == {}


def test_fail_with_answers_a_stripe_error(client: stripe.StripeClient, fake: StripeFake) -> None:
    fake.fail_with = 402
    with pytest.raises(stripe.CardError) as card:
        client.v1.customers.create(params={"email": "x@example.com"})
    assert card.value.code == "card_declined"

    fake.fail_with = 500
    with pytest.raises(stripe.APIError):
        client.v1.customers.create(params={"email": "x@example.com"})
    assert fake.objects["customer"] == {}

    fake.fail_with = 500
    fake.fail_match = "POST /v1/checkout/sessions"
    assert client.v1.prices.list().data  # other routes still answer

    fake.fail_with = None
    assert client.v1.customers.create(params={"email": "x@example.com"}).id


def test_down_drops_the_connection(client: stripe.StripeClient, fake: StripeFake) -> None:
    fake.down = True
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(params={"email": "x@example.com"})
    assert fake.requests[-1].status is None
    fake.down = False
    assert client.v1.customers.create(params={"email": "x@example.com"}).id


def test_global_api_base_works_too(fake: StripeFake) -> None:
    customer = stripe.Customer.create(api_key=KEY, email="g@example.com")
    assert customer.id in fake.objects["customer"]


# --- webhook signatures ----------------------------------------------------------------------


def _signed_event(fake: StripeFake, **kwargs: Any) -> tuple[bytes, dict[str, Any]]:
    event = fake.event("invoice.paid", fake.invoice(), **kwargs)
    return json.dumps(event).encode(), event


def test_signed_event_is_accepted(fake: StripeFake) -> None:
    payload, event = _signed_event(fake)
    header = fake.sign(payload, WEBHOOK_SECRET)
    assert header.startswith("t=")
    assert ",v1=" in header
    verified = stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET, tolerance=300)
    assert verified.id == event["id"]
    assert verified.type == "invoice.paid"


def test_bad_signature_is_refused(fake: StripeFake) -> None:
    payload, _ = _signed_event(fake)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            payload, fake.sign(payload, "whsec_other"), WEBHOOK_SECRET, tolerance=300
        )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            payload + b" ", fake.sign(payload, WEBHOOK_SECRET), WEBHOOK_SECRET, tolerance=300
        )


def test_expired_signature_is_refused(fake: StripeFake) -> None:
    payload, _ = _signed_event(fake)
    old = fake.sign(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, old, WEBHOOK_SECRET, tolerance=300)


# --- dj-stripe's Event.process against the fake ---------------------------------------------


def _process(event: dict[str, Any]) -> Any:
    from djstripe.models import Event

    return Event.process(data=event, api_key=KEY)


@pytest.mark.django_db
def test_djstripe_checkout_session_completed(fake: StripeFake) -> None:
    from djstripe.models import Account, APIKey, Customer, Session, Subscription

    customer = fake.customer(email="ada@example.com", metadata={"user_id": "42"})
    sub = fake.subscription(customer=customer["id"], metadata={"user_id": "42"})
    session = fake.checkout_session(
        customer=customer["id"], subscription=sub["id"], metadata={"user_id": "42"}
    )
    event = _process(fake.event("checkout.session.completed", session))

    assert event.type == "checkout.session.completed"
    stored = Session.objects.get(id=session["id"])
    assert stored.stripe_data["status"] == "complete"
    assert stored.customer is not None
    assert stored.customer.id == customer["id"]
    assert stored.subscription is not None
    assert stored.subscription.id == sub["id"]
    assert Customer.objects.get(id=customer["id"]).stripe_data["email"] == "ada@example.com"
    assert Subscription.objects.get(id=sub["id"]).stripe_data["status"] == "active"
    assert Account.objects.get(id=fake.account_id)
    assert stored.djstripe_owner_account_id == fake.account_id
    assert not APIKey.objects.exists()  # invoicing.djstripe_accounts: no key is ever stored
    assert set(fake.routes_called) == {
        "GET /v1/account",
        f"GET /v1/customers/{customer['id']}",
        f"GET /v1/checkout/sessions/{session['id']}",
        f"GET /v1/subscriptions/{sub['id']}",
        f"GET /v1/products/{sub['items']['data'][0]['price']['product']}",
        f"GET /v1/products/{sub['items']['data'][0]['price']['product']}/features",
    }
    assert all(r.status == 200 for r in fake.requests)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("customer.subscription.created", "active"),
        ("customer.subscription.updated", "past_due"),
        ("customer.subscription.deleted", "canceled"),
    ],
)
def test_djstripe_subscription_events(fake: StripeFake, event_type: str, status: str) -> None:
    from djstripe.models import Customer, Price, Subscription, SubscriptionItem

    now = int(time.time())
    sub = fake.subscription(
        lookup_key="a1zap_enterprise_year",
        status=status,
        period_start=now,
        period_end=now + 365 * 86_400,
        metadata={"user_id": "42"},
        cancel_at_period_end=status == "past_due",
    )
    _process(fake.event(event_type, sub))

    stored = Subscription.objects.get(id=sub["id"])
    assert stored.stripe_data["status"] == status
    assert stored.stripe_data["metadata"] == {"user_id": "42"}
    assert stored.stripe_data["current_period_end"] == now + 365 * 86_400
    assert stored.stripe_data["items"]["data"][0]["current_period_end"] == now + 365 * 86_400
    assert stored.customer.id == sub["customer"]
    assert Customer.objects.filter(id=sub["customer"]).exists()
    item = SubscriptionItem.objects.get(subscription=stored)
    assert item.price is not None
    assert item.price.id == fake.price_id("a1zap_enterprise_year")
    assert (
        Price.objects.get(id=fake.price_id("a1zap_enterprise_year")).stripe_data["unit_amount"]
        == 99990
    )
    if status == "canceled":
        assert stored.stripe_data["canceled_at"] is not None
    product = sub["items"]["data"][0]["price"]["product"]
    assert set(fake.routes_called) == {
        "GET /v1/account",
        f"GET /v1/customers/{sub['customer']}",
        f"GET /v1/subscriptions/{sub['id']}",
        f"GET /v1/products/{product}",
        f"GET /v1/products/{product}/features",
    }
    assert all(r.status == 200 for r in fake.requests)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event_type", "status"), [("invoice.paid", "paid"), ("invoice.payment_failed", "open")]
)
def test_djstripe_invoice_events(fake: StripeFake, event_type: str, status: str) -> None:
    from djstripe.models import Invoice

    sub = fake.subscription()
    invoice = fake.invoice(subscription=sub["id"], status=status)
    _process(fake.event(event_type, invoice))

    stored = Invoice.objects.get(id=invoice["id"])
    assert stored.stripe_data["status"] == status
    assert stored.stripe_data["amount_paid"] == (2999 if status == "paid" else 0)
    assert stored.stripe_data["amount_due"] == 2999
    assert stored.stripe_data["currency"] == "usd"
    assert stored.stripe_data["parent"]["subscription_details"]["subscription"] == sub["id"]
    assert stored.customer.id == sub["customer"]
    assert set(fake.routes_called) == {
        "GET /v1/account",
        f"GET /v1/customers/{sub['customer']}",
        f"GET /v1/invoices/{invoice['id']}",
    }
    assert all(r.status == 200 for r in fake.requests)
    (fetch,) = fake.requests_to("GET", f"/v1/invoices/{invoice['id']}")
    assert fetch.params == {"expand": ["discounts", "lines.data.discounts"]}


@pytest.mark.django_db
def test_djstripe_event_is_processed_once(fake: StripeFake) -> None:
    from djstripe.models import Event

    event = fake.event("customer.subscription.updated", fake.subscription())
    first = _process(event)
    calls = len(fake.requests)
    again = _process(event)
    assert again.pk == first.pk
    assert len(fake.requests) == calls
    assert Event.objects.filter(id=event["id"]).count() == 1


@pytest.mark.django_db
def test_complete_checkout_session_feeds_djstripe(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    from djstripe.models import Subscription

    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer_email": "ada@example.com",
            "line_items": [{"price": fake.price_id("a1zap_pro_year")}],
            "subscription_data": {"metadata": {"user_id": "42"}},
            "success_url": "https://app.test/ok",
        }
    )
    done = fake.complete_checkout_session(session.id)
    assert done["session"]["status"] == "complete"
    assert done["subscription"]["metadata"] == {"user_id": "42"}
    assert done["invoice"]["amount_paid"] == 29990

    _process(fake.event("checkout.session.completed", done["session"]))
    stored = Subscription.objects.get(id=done["subscription"]["id"])
    assert stored.stripe_data["latest_invoice"] == done["invoice"]["id"]


@pytest.mark.django_db
def test_djstripe_fails_loudly_when_stripe_fails(fake: StripeFake) -> None:
    from djstripe.models import Event

    event = fake.event("customer.subscription.updated", fake.subscription())
    fake.fail_with = 500
    with pytest.raises(stripe.APIError):
        _process(event)
    fake.fail_with = None
    fake.down = True
    with pytest.raises(stripe.APIConnectionError):
        _process(event)
    assert not Event.objects.filter(id=event["id"]).exists()

    fake.down = False
    _process(event)
    assert Event.objects.filter(id=event["id"]).exists()


@pytest.mark.django_db
def test_djstripe_refetches_the_fakes_current_state(fake: StripeFake) -> None:
    """dj-stripe stores what the API says now, not the event's payload: rebuild the object
    in the fake (same id) to change what the next event's re-fetch sees."""
    from djstripe.models import Subscription

    sub = fake.subscription(metadata={"user_id": "42"})
    _process(fake.event("customer.subscription.created", sub))
    updated = fake.subscription(
        sub["id"], customer=sub["customer"], status="past_due", metadata={"user_id": "42"}
    )
    assert updated["items"]["data"][0]["id"] == sub["items"]["data"][0]["id"]
    _process(fake.event("customer.subscription.updated", updated))
    assert Subscription.objects.get(id=sub["id"]).stripe_data["status"] == "past_due"

    stale = fake.event("customer.subscription.updated", {**updated, "status": "active"})
    _process(stale)
    assert Subscription.objects.get(id=sub["id"]).stripe_data["status"] == "past_due"
