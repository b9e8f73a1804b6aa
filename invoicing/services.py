"""Moved from billing.services (layering)."""

from typing import Any, cast

import stripe
from django.conf import settings
from django.db import transaction

from audit.actors import Actor
from billing.models import (
    PlanId,
    SubscriptionPlan,
    UserSubscription,
)
from billing.services import (
    PAID_STATUSES,
    subscription_audit,
    subscription_lock_for_user,
    subscription_snapshot,
)
from core.errors import ServiceError
from invoicing.stripe_gateway import (
    BillingProviderError,
    BillingUnavailable,
    stripe_client,
    stripe_errors,
)
from invoicing.stripe_gateway import options as stripe_options


def _ensure_stripe_customer(client: stripe.StripeClient, *, user_id: str, email: str | None) -> str:
    """Return the user's Stripe customer id, creating the customer once.

    The creation's idempotency key is the user's id, so two racing requests (or a retry after
    a failure before the id was stored) get the same customer from Stripe.
    """
    with transaction.atomic():
        subscription = subscription_lock_for_user(user_id=user_id, actor=Actor.owner(user_id))
    if subscription.stripe_customer_id:
        return subscription.stripe_customer_id
    params: dict[str, Any] = {"metadata": {"user_id": user_id}}
    if email:
        params["email"] = email
    with stripe_errors():
        customer = client.v1.customers.create(
            params=cast(Any, params), options=stripe_options(f"a1zap-customer-{user_id}")
        )
    with transaction.atomic():
        unlinked = (
            UserSubscription.objects.select_for_update()
            .filter(user_id=user_id, stripe_customer_id__isnull=True)
            .first()
        )
        if unlinked is not None:
            before = subscription_snapshot(unlinked)
            unlinked.stripe_customer_id = customer.id
            unlinked.save(update_fields=["stripe_customer_id", "updated_at"])
            subscription_audit(
                unlinked,
                actor=Actor.owner(user_id),
                action="subscription.billing_account_linked",
                before=before,
            )
    stored = UserSubscription.objects.values_list("stripe_customer_id", flat=True).get(
        user_id=user_id
    )
    return stored or customer.id


class AlreadySubscribed(ServiceError):
    status_code = 409
    code = "already_subscribed"
    default_detail = "You already have a paid subscription; change it in the billing portal."


class NoBillingAccount(ServiceError):
    status_code = 409
    code = "no_billing_account"
    default_detail = "You have no billing account yet; subscribe to a plan first."


def billing_checkout_create(
    *, user_id: str, email: str | None, plan_id: str, interval: str, request_key: str
) -> str:
    """Return the URL of a Stripe Checkout session for the plan and interval.

    `request_key` makes a retried request return the same session.
    """
    client = stripe_client()
    current = UserSubscription.objects.filter(user_id=user_id).first()
    if (
        current is not None
        and current.stripe_subscription_id
        and current.status in PAID_STATUSES
        and current.plan_id != PlanId.FREE
    ):
        raise AlreadySubscribed()
    plan = SubscriptionPlan.objects.get(pk=plan_id)
    lookup_key = plan.stripe_lookup_key(interval)
    customer_id = _ensure_stripe_customer(client, user_id=user_id, email=email)
    with stripe_errors():
        prices = client.v1.prices.list(params={"lookup_keys": [lookup_key], "active": True})
    if not prices.data:
        raise BillingUnavailable(f"The {plan.name} plan cannot be bought right now ({lookup_key}).")
    with stripe_errors():
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": user_id,
                "line_items": [{"price": prices.data[0].id, "quantity": 1}],
                "success_url": settings.BILLING_SUCCESS_URL,
                "cancel_url": settings.BILLING_CANCEL_URL,
                "metadata": {"user_id": user_id, "plan": plan_id, "interval": interval},
                "subscription_data": {"metadata": {"user_id": user_id, "plan": plan_id}},
            },
            options=stripe_options(f"a1zap-checkout-{user_id}-{lookup_key}-{request_key}"),
        )
    if not session.url:
        raise BillingProviderError("Stripe returned a checkout session without a URL.")
    return str(session.url)


def billing_portal_create(*, user_id: str) -> str:
    """Return the URL of the Stripe customer portal for the user."""
    client = stripe_client()
    customer_id = (
        UserSubscription.objects.filter(user_id=user_id)
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    if not customer_id:
        raise NoBillingAccount()
    with stripe_errors():
        session = client.v1.billing_portal.sessions.create(
            params={"customer": customer_id, "return_url": settings.BILLING_PORTAL_RETURN_URL}
        )
    return str(session.url)
