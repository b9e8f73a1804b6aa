"""Billing against a local fake of Stripe's HTTP API: checkout, portal, webhooks, the close."""

import datetime as dt
import io
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from agents.models import A1Agent
from billing.models import BillingEvent, UserSubscription
from invoicing.models import StripeWebhookEvent
from invoicing.stripe_inbox import stripe_event_process
from tests.background import manage_py, wait_until
from tests.conftest import STRIPE_KEY
from tests.conftest import STRIPE_WEBHOOK_SECRET as WEBHOOK_SECRET
from tests.factories import AgentFactory, messages_ingested
from tests.stripe_fake import StripeFake, sign

pytestmark = pytest.mark.django_db


def post_webhook(event: dict[str, Any], *, secret: str = WEBHOOK_SECRET,
                 timestamp: int | None = None, signature: str | None = None) -> Any:  # fmt: skip
    """Deliver the event to the webhook as Stripe does; return its HTTP answer."""
    payload = json.dumps(event).encode()
    header = signature if signature is not None else sign(payload, secret, timestamp)
    return Client().post(
        "/stripe/webhook/", payload, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )  # fmt: skip


@dataclass
class Delivered:
    """The webhook's answer, and what applying the stored event did (`outcome`)."""

    answer: Any
    outcome: str | None

    @property
    def status_code(self) -> int:
        return int(self.answer.status_code)

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = self.answer.json()
        return {**body, "outcome": self.outcome} if self.outcome is not None else body


def deliver(event: dict[str, Any], **signing: Any) -> Delivered:
    """Deliver the event, then apply it as its task does (in this test's transaction, where
    no worker would see it; the tests with a worker use `post_webhook`)."""
    answer = post_webhook(event, **signing)
    queued = answer.status_code == 200 and answer.json().get("outcome") == "queued"
    return Delivered(answer, stripe_event_process(stripe_event_id=event["id"]) if queued else None)


# --- checkout and portal ---------------------------------------------------------------------


def test_checkout_creates_the_customer_once_and_returns_the_session_url(
    fake: StripeFake, api_client: APIClient, owner_headers: Any
) -> None:
    response = api_client.post(
        "/api/v1/billing/checkout/", {"plan": "pro", "interval": "year"}, format="json",
        **owner_headers(), HTTP_IDEMPOTENCY_KEY="attempt-1",
    )  # fmt: skip
    again = api_client.post(
        "/api/v1/billing/checkout/", {"plan": "pro", "interval": "year"}, format="json",
        **owner_headers(), HTTP_IDEMPOTENCY_KEY="attempt-1",
    )  # fmt: skip

    assert response.status_code == 200, response.json()
    assert response.json()["url"].startswith("https://checkout.stripe.test/")
    assert again.json()["url"] == response.json()["url"]  # same key: same session
    customers = fake.created("customer")
    assert len(customers) == 1
    assert UserSubscription.objects.get(user_id="user_1").stripe_customer_id == customers[0]["id"]
    (create_customer,) = fake.requests_to("POST", "/v1/customers")
    assert create_customer.params["metadata"] == {"user_id": "user_1"}
    assert create_customer.idempotency_key == "a1zap-customer-user_1"
    price_lookup = fake.requests_to("GET", "/v1/prices")[0]
    assert price_lookup.params["lookup_keys"] == ["a1zap_pro_year"]
    session = fake.requests_to("POST", "/v1/checkout/sessions")[0]
    assert session.params["mode"] == "subscription"
    assert session.params["customer"] == customers[0]["id"]
    assert session.params["client_reference_id"] == "user_1"
    assert session.params["line_items"] == [
        {"price": fake.price_id("a1zap_pro_year"), "quantity": "1"}
    ]
    assert session.params["subscription_data"]["metadata"] == {"user_id": "user_1", "plan": "pro"}
    assert session.idempotency_key == "a1zap-checkout-user_1-a1zap_pro_year-attempt-1"


def test_checkout_when_stripe_refuses_is_502_and_when_down_503(
    fake: StripeFake, api_client: APIClient, owner_headers: Any
) -> None:
    fake.fail_with = 402
    fake.fail_match = "POST /v1/checkout/sessions"
    refused = api_client.post("/api/v1/billing/checkout/", {"plan": "pro"}, format="json",
                              **owner_headers())  # fmt: skip
    fake.fail_with = None
    fake.down = True
    down = api_client.post("/api/v1/billing/checkout/", {"plan": "enterprise"}, format="json",
                           **owner_headers())  # fmt: skip

    assert (refused.status_code, refused.json()["code"]) == (502, "billing_provider_error")
    assert (down.status_code, down.json()["code"]) == (503, "billing_unavailable")
    assert not BillingEvent.objects.exists()


def test_checkout_refuses_an_owner_who_already_pays(
    fake: StripeFake, api_client: APIClient, owner_headers: Any
) -> None:
    UserSubscription.objects.create(
        user_id="user_1", plan_id="pro", status="active", stripe_customer_id="cus_x",
        stripe_subscription_id="sub_x",
    )  # fmt: skip

    response = api_client.post("/api/v1/billing/checkout/", {"plan": "enterprise"}, format="json",
                               **owner_headers())  # fmt: skip

    assert (response.status_code, response.json()["code"]) == (409, "already_subscribed")
    assert fake.requests == []


def test_portal_needs_a_billing_account_then_returns_its_url(
    fake: StripeFake, api_client: APIClient, owner_headers: Any
) -> None:
    without = api_client.post("/api/v1/billing/portal/", **owner_headers())
    customer = fake.customer()
    UserSubscription.objects.create(user_id="user_1", stripe_customer_id=customer["id"])

    response = api_client.post("/api/v1/billing/portal/", **owner_headers())

    assert (without.status_code, without.json()["code"]) == (409, "no_billing_account")
    assert response.status_code == 200
    assert response.json()["url"].startswith("https://billing.stripe.test/")
    (portal,) = fake.requests_to("POST", "/v1/billing_portal/sessions")
    assert portal.params["customer"] == customer["id"]
    assert portal.params["return_url"]


# --- webhooks: signatures ----------------------------------------------------------------------


def subscription_event(
    fake: StripeFake, kind: str = "created", *, user: str = "user_1",
    lookup_key: str = "a1zap_pro_month", status: str = "active", created: int | None = None,
    sub_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    customer = fake.customer(metadata={"user_id": user})
    subscription = fake.subscription(
        sub_id, customer=customer["id"], lookup_key=lookup_key, status=status,
        metadata={"user_id": user}, period_start=1_790_000_000, period_end=1_792_592_000,
    )  # fmt: skip
    return fake.event(f"customer.subscription.{kind}", subscription, created=created)


def test_webhook_refuses_bad_missing_and_expired_signatures(fake: StripeFake) -> None:
    event = subscription_event(fake)

    wrong_secret = deliver(event, secret="whsec_someone_else")
    missing = deliver(event, signature="")
    expired = deliver(event, timestamp=int(time.time()) - 301)
    garbage = deliver(event, signature="t=1,v1=deadbeef")

    for response in (wrong_secret, missing, expired, garbage):
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_signature"
    assert not BillingEvent.objects.exists()
    assert not UserSubscription.objects.exists()


def test_webhook_without_a_secret_configured_is_503(fake: StripeFake, settings: Any) -> None:
    event = subscription_event(fake)
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = deliver(event)

    assert (response.status_code, response.json()["code"]) == (503, "webhook_unavailable")


def test_webhook_accepts_a_signature_within_tolerance(fake: StripeFake) -> None:
    response = deliver(subscription_event(fake), timestamp=int(time.time()) - 250)

    assert response.status_code == 200


# --- webhooks: each event's effect -------------------------------------------------------------


def test_subscription_created_moves_the_user_to_the_plan_and_its_limits(fake: StripeFake) -> None:
    event = subscription_event(fake, "created", lookup_key="a1zap_pro_month")

    response = deliver(event)

    assert response.json() == {"status": "ok", "outcome": "applied"}
    subscription = UserSubscription.objects.get(user_id="user_1")
    assert (subscription.plan_id, subscription.status) == ("pro", "active")
    assert (subscription.max_personal_agents, subscription.max_work_agents,
            subscription.max_total_agents) == (5, 5, 10)  # fmt: skip
    assert subscription.stripe_subscription_id == event["data"]["object"]["id"]
    assert subscription.current_period_start == dt.datetime.fromtimestamp(1_790_000_000, dt.UTC)
    assert subscription.current_period_end == dt.datetime.fromtimestamp(1_792_592_000, dt.UTC)
    ledger = BillingEvent.objects.get(user_id="user_1")
    assert ledger.event_type == "customer.subscription.created"
    assert (ledger.metadata or {})["stripe_event_id"] == event["id"]
    from djstripe.models import Subscription

    assert Subscription.objects.get(id=event["data"]["object"]["id"]).stripe_data["status"] == (
        "active"
    )


def test_subscription_updated_to_enterprise_lifts_the_limits(fake: StripeFake) -> None:
    deliver(subscription_event(fake, "created", sub_id="sub_up"))

    deliver(
        subscription_event(fake, "updated", sub_id="sub_up", lookup_key="a1zap_enterprise_year")
    )

    subscription = UserSubscription.objects.get(user_id="user_1")
    assert (subscription.plan_id, subscription.max_total_agents) == ("enterprise", -1)


def test_subscription_deleted_cancels_back_to_free_and_keeps_every_agent(
    fake: StripeFake, api_client: APIClient, owner_headers: Any
) -> None:
    deliver(subscription_event(fake, "created", sub_id="sub_del"))
    agents = [AgentFactory.create(owner_id="user_1", agent_type="personal") for _ in range(4)]

    response = deliver(subscription_event(fake, "deleted", sub_id="sub_del", status="canceled"))
    create = api_client.post("/api/v1/agents/", {"name": "x", "handle": "one_more",
                             "agent_type": "work"}, format="json", **owner_headers())  # fmt: skip

    assert response.status_code == 200
    subscription = UserSubscription.objects.get(user_id="user_1")
    assert (subscription.plan_id, subscription.status) == ("free", "cancelled")
    assert subscription.cancelled_at is not None
    assert subscription.max_total_agents == 2
    assert A1Agent.objects.filter(pk__in=[a.pk for a in agents]).count() == 4
    assert (create.status_code, create.json()["code"]) == (403, "agent_limit_reached")


def test_cancel_at_period_end_keeps_the_plan_and_shows_when_it_ends(
    fake: StripeFake, api_client: APIClient, owner_headers: Any
) -> None:
    deliver(subscription_event(fake, "created", sub_id="sub_end", created=int(time.time()) - 60))
    asked = 1_791_000_000
    ending = fake.subscription(
        "sub_end", lookup_key="a1zap_pro_month", metadata={"user_id": "user_1"},
        period_start=1_790_000_000, period_end=1_792_592_000, cancel_at_period_end=True,
        canceled_at=asked,
    )  # fmt: skip
    assert ending["cancel_at"] == 1_792_592_000

    response = deliver(fake.event("customer.subscription.updated", ending))
    body = api_client.get("/api/v1/subscription/", **owner_headers()).json()

    assert response.json()["outcome"] == "applied"
    row = UserSubscription.objects.get(user_id="user_1")
    assert (row.plan_id, row.status, row.max_total_agents) == ("pro", "active", 10)
    assert row.cancelled_at == dt.datetime.fromtimestamp(asked, dt.UTC)
    assert row.ends_at == dt.datetime.fromtimestamp(1_792_592_000, dt.UTC)
    assert (body["plan"]["id"], body["status"]) == ("pro", "active")
    assert dt.datetime.fromisoformat(body["cancelled_at"]) == row.cancelled_at
    assert dt.datetime.fromisoformat(body["ends_at"]) == row.ends_at


def test_taking_back_a_cancellation_at_period_end_clears_when_it_ends(
    fake: StripeFake, api_client: APIClient, owner_headers: Any
) -> None:
    now = int(time.time())
    deliver(subscription_event(fake, "created", sub_id="sub_back", created=now - 60))
    ending = fake.subscription("sub_back", metadata={"user_id": "user_1"},
                               cancel_at_period_end=True, canceled_at=now - 30)  # fmt: skip
    deliver(fake.event("customer.subscription.updated", ending, created=now - 30))
    renewing = fake.subscription("sub_back", metadata={"user_id": "user_1"})

    deliver(fake.event("customer.subscription.updated", renewing, created=now))
    body = api_client.get("/api/v1/subscription/", **owner_headers()).json()

    row = UserSubscription.objects.get(user_id="user_1")
    assert (row.plan_id, row.status, row.cancelled_at, row.ends_at) == ("pro", "active", None, None)
    assert (body["cancelled_at"], body["ends_at"]) == (None, None)


def test_a_subscription_that_ended_says_when(fake: StripeFake) -> None:
    deliver(subscription_event(fake, "created", sub_id="sub_gone", created=int(time.time()) - 60))
    ended = fake.subscription("sub_gone", status="canceled", canceled_at=1_791_000_000,
                              metadata={"user_id": "user_1"})  # fmt: skip

    deliver(fake.event("customer.subscription.deleted", ended))

    row = UserSubscription.objects.get(user_id="user_1")
    assert (row.plan_id, row.status) == ("free", "cancelled")
    assert row.cancelled_at == dt.datetime.fromtimestamp(1_791_000_000, dt.UTC)
    assert row.ends_at == dt.datetime.fromtimestamp(ended["ended_at"], dt.UTC)


def test_staff_see_when_a_subscription_was_cancelled_and_when_it_ends(fake: StripeFake) -> None:
    from django.contrib.auth.models import User

    deliver(subscription_event(fake, "created", sub_id="sub_adm", created=int(time.time()) - 60))
    ending = fake.subscription("sub_adm", metadata={"user_id": "user_1"},
                               cancel_at_period_end=True, canceled_at=1_791_000_000,
                               period_end=1_792_592_000)  # fmt: skip
    deliver(fake.event("customer.subscription.updated", ending))
    row = UserSubscription.objects.get(user_id="user_1")
    client = Client()
    client.force_login(User.objects.create_superuser("ops", password="pw"))

    listing = client.get("/admin/billing/usersubscription/")
    page = client.get(f"/admin/billing/usersubscription/{row.pk}/change/")

    assert listing.status_code == page.status_code == 200
    for response in (listing, page):
        html = response.content.decode()
        assert "Ends at" in html
        assert "Cancelled at" in html
    assert "field-ends_at" in page.content.decode()


def test_checkout_completed_links_the_customer_and_subscription(fake: StripeFake) -> None:
    subscription = fake.subscription(metadata={"user_id": "user_1"})
    session = fake.checkout_session(
        customer=subscription["customer"], subscription=subscription["id"],
        client_reference_id="user_1", metadata={"user_id": "user_1"},
    )  # fmt: skip

    response = deliver(fake.event("checkout.session.completed", session))

    assert response.status_code == 200
    row = UserSubscription.objects.get(user_id="user_1")
    assert (row.stripe_customer_id, row.stripe_subscription_id) == (
        subscription["customer"], subscription["id"],
    )  # fmt: skip


def test_failed_then_paid_invoice_moves_to_past_due_and_back(fake: StripeFake) -> None:
    created = subscription_event(fake, "created", sub_id="sub_pay")
    deliver(created)
    customer = created["data"]["object"]["customer"]
    failed = fake.invoice(customer=customer, subscription="sub_pay", status="open",
                          amount_due=2999, amount_paid=0)  # fmt: skip
    paid = fake.invoice(customer=customer, subscription="sub_pay", status="paid",
                        amount_due=2999, amount_paid=2999)  # fmt: skip

    deliver(fake.event("invoice.payment_failed", failed, created=int(time.time()) + 1))
    past_due = UserSubscription.objects.get(user_id="user_1")
    deliver(fake.event("invoice.paid", paid, created=int(time.time()) + 2))
    recovered = UserSubscription.objects.get(user_id="user_1")

    assert (past_due.status, past_due.past_due_since is not None) == ("past_due", True)
    assert (recovered.status, recovered.past_due_since) == ("active", None)
    ledger = {e.event_type: e for e in BillingEvent.objects.filter(user_id="user_1")}
    assert ledger["invoice.paid"].amount == Decimal("29.99")
    assert ledger["invoice.paid"].invoice_id == paid["id"]
    assert ledger["invoice.payment_failed"].amount == Decimal("29.99")


def test_the_same_event_twice_changes_nothing_the_second_time(fake: StripeFake) -> None:
    event = subscription_event(fake, "created")

    first = deliver(event)
    UserSubscription.objects.filter(user_id="user_1").update(max_personal_agents=7)
    second = deliver(event)

    assert first.json()["outcome"] == "applied"
    assert second.json()["outcome"] == "duplicate"
    assert BillingEvent.objects.count() == 1
    assert UserSubscription.objects.get(user_id="user_1").max_personal_agents == 7


def test_an_older_event_after_a_newer_one_does_not_roll_back(fake: StripeFake) -> None:
    now = int(time.time())
    newer = subscription_event(fake, "updated", sub_id="sub_order",
                               lookup_key="a1zap_enterprise_month", created=now)  # fmt: skip
    older = subscription_event(fake, "created", sub_id="sub_order",
                               lookup_key="a1zap_pro_month", created=now - 60)  # fmt: skip

    deliver(newer)
    response = deliver(older)

    assert response.json()["outcome"] == "recorded"
    assert UserSubscription.objects.get(user_id="user_1").plan_id == "enterprise"
    assert BillingEvent.objects.count() == 2


def test_stripe_down_during_a_webhook_is_answered_200_and_applied_once_stripe_is_back(
    fake: StripeFake, worker: Any
) -> None:
    event = subscription_event(fake, "created")
    fake.down = True

    answer = post_webhook(event)
    wait_until(
        lambda: StripeWebhookEvent.objects.filter(pk=event["id"], attempts__gte=2).exists(),
        "two attempts while Stripe is down",
    )
    fake.down = False
    applied = wait_until(
        lambda: StripeWebhookEvent.objects.filter(pk=event["id"], applied_at__isnull=False).first(),
        "the event applied",
    )

    assert (answer.status_code, answer.json()) == (200, {"status": "ok", "outcome": "queued"})
    assert applied.outcome == "applied"
    assert UserSubscription.objects.get(user_id="user_1").plan_id == "pro"
    assert BillingEvent.objects.filter(user_id="user_1").count() == 1


def test_an_event_for_an_unknown_customer_is_acknowledged_and_ignored(fake: StripeFake) -> None:
    subscription = fake.subscription(metadata={})

    response = deliver(fake.event("customer.subscription.updated", subscription))

    assert response.json()["outcome"] == "unknown_user"
    assert not BillingEvent.objects.exists()


def test_unhandled_event_types_are_acknowledged(fake: StripeFake) -> None:
    response = deliver(fake.event("customer.created", fake.customer()))

    assert response.json()["outcome"] == "ignored"


# --- the monthly close with Stripe -------------------------------------------------------------


@pytest.fixture
def overage(fake: StripeFake) -> dict[str, str]:
    """user_a (pro): 55,500 messages in September, 5,500 over -> 11.00; user_b (pro, no
    Stripe customer): 50,100 -> 0.20; user_c (pro): under its quota."""
    customers = {}
    for user, messages, with_customer in (("a", 55_500, True), ("b", 50_100, False),
                                          ("c", 10, True)):  # fmt: skip
        customer = fake.customer()["id"] if with_customer else None
        customers[user] = customer or ""
        UserSubscription.objects.create(user_id=f"user_{user}", plan_id="pro",
                                        stripe_customer_id=customer)  # fmt: skip
        agent = AgentFactory.create(owner_id=f"user_{user}")
        messages_ingested(agent, day=dt.date(2026, 9, 14), messages=messages)
    return customers


def close(*args: str) -> str:
    out = io.StringIO()
    call_command("close_billing_period", "--month", "2026-09", *args, stdout=out,
                 stderr=io.StringIO())  # fmt: skip
    return out.getvalue()


def sent_rows() -> int:
    return BillingEvent.objects.filter(
        event_type="usage_period_closed", metadata__has_key="stripe_invoice_item_id"
    ).count()


def test_close_queues_one_invoice_item_per_overage_sent_with_an_idempotency_key(
    fake: StripeFake, overage: dict[str, str], worker: Any
) -> None:
    summary = close()
    wait_until(lambda: sent_rows() == 1, "the invoice item task")

    (item,) = fake.requests_to("POST", "/v1/invoiceitems")
    assert item.params["customer"] == overage["a"]
    assert (item.params["amount"], item.params["currency"]) == ("1100", "usd")
    assert item.params["metadata"] == {"user_id": "user_a", "period": "2026-09"}
    assert item.idempotency_key == "a1zap-overage-user_a-2026-09"
    row = BillingEvent.objects.get(user_id="user_a", event_type="usage_period_closed")
    assert (row.metadata or {})["stripe_invoice_item_id"] == fake.created("invoiceitem")[0]["id"]
    assert "Queued 1 Stripe invoice items" in summary
    assert "no Stripe customer  1" in summary  # user_b's 0.20 waits for a customer


def test_close_records_the_ledger_before_anything_reaches_stripe(
    fake: StripeFake, overage: dict[str, str]
) -> None:
    from a1zap.celery import app

    app.control.purge()

    summary = close()

    assert fake.requests_to("POST", "/v1/invoiceitems") == []  # no worker here: queued only
    assert BillingEvent.objects.filter(event_type="usage_period_closed").count() == 3
    assert "waiting for Stripe  1" in summary
    app.control.purge()


def test_close_rerun_sends_nothing_twice(
    fake: StripeFake, overage: dict[str, str], worker: Any
) -> None:
    close()
    wait_until(lambda: sent_rows() == 1, "the invoice item task")

    again = close()

    assert "Queued 0 Stripe invoice items" in again
    assert len(fake.requests_to("POST", "/v1/invoiceitems")) == 1
    assert BillingEvent.objects.filter(event_type="usage_period_closed").count() == 3


def test_a_stripe_outage_during_the_close_is_retried_and_each_item_sent_once(
    fake: StripeFake, overage: dict[str, str], worker: Any
) -> None:
    fake.fail_with = 503
    fake.fail_match = "POST /v1/invoiceitems"

    close()
    wait_until(lambda: len(fake.requests_to("POST", "/v1/invoiceitems")) >= 2, "two failures")
    fake.fail_with = None
    wait_until(lambda: sent_rows() == 1, "the retried invoice item")

    assert len(fake.created("invoiceitem")) == 1
    assert [r.status for r in fake.requests_to("POST", "/v1/invoiceitems")][-1] == 200


def test_an_invoice_item_stripe_refuses_is_a_failed_job_not_a_retry(
    fake: StripeFake, overage: dict[str, str], worker: Any
) -> None:
    from jobs.models import FailedJob

    fake.fail_with = 400
    fake.fail_match = "POST /v1/invoiceitems"

    close()
    job = wait_until(lambda: FailedJob.objects.first(), "the failed job")

    assert job.task_name == "invoicing.overage_invoice_item_send"
    assert "BillingProviderError" in job.error
    assert job.retries == 0
    assert len(fake.requests_to("POST", "/v1/invoiceitems")) == 1


def test_the_close_without_a_broker_records_the_ledger_and_says_to_re_run_in_one_line(
    transactional_db: None, fake: StripeFake, overage: dict[str, str]
) -> None:
    result = manage_py(
        "close_billing_period", "--month", "2026-09",
        env={"TEST_CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
             "STRIPE_SECRET_KEY": STRIPE_KEY,
             "STRIPE_API_BASE": fake.base_url},
    )  # fmt: skip

    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "CommandError: 1 invoice items could not be queued: the broker (CELERY_BROKER_URL) "
        "cannot be reached. Re-run to queue them."
    )
    assert "Traceback" not in result.stderr
    assert BillingEvent.objects.filter(event_type="usage_period_closed").count() == 3
    assert fake.requests_to("POST", "/v1/invoiceitems") == []


def test_dry_run_calls_no_stripe(fake: StripeFake, overage: dict[str, str]) -> None:
    output = close("--dry-run")

    assert fake.requests == []
    assert not BillingEvent.objects.exists()
    assert "3 users, 2 with overage, total 11.20." in output
