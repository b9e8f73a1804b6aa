"""Apply Stripe's webhook events to our subscriptions and ledger.

A task applies each stored event (`invoicing.stripe_inbox`). It is first handed to
dj-stripe, which syncs its own copy of Stripe's objects (it re-fetches them from the API),
then applied to `user_subscriptions` from the event's payload, in one transaction with its
`billing_events` row:

- the same event delivered twice changes nothing the second time: its ledger row is unique on
  the Stripe event id, and a duplicate stops before any change;
- an older event arriving after a newer one does not roll state back: a subscription
  remembers the `created` time of the last event that set its state (`stripe_state_at`).

What an event changes is recorded in the audit trail (actor `stripe`, with the event id) in
the same transaction.
"""

import datetime as dt
import logging
import re
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from audit.actors import Actor
from billing.models import (
    BillingEvent,
    BillingEventType,
    PlanId,
    SubscriptionStatus,
    UserSubscription,
)
from billing.services import (
    set_plan_and_limits,
    subscription_audit,
    subscription_end,
    subscription_lock_for_user,
    subscription_snapshot,
)
from invoicing.stripe_cancellations import ENDED_STATUSES, stripe_cancellation_request
from invoicing.stripe_gateway import BillingUnavailable, stripe_configured, stripe_outage
from notifications.events import event_emit

logger = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset(
    {
        BillingEventType.CHECKOUT_SESSION_COMPLETED,
        BillingEventType.CUSTOMER_SUBSCRIPTION_CREATED,
        BillingEventType.CUSTOMER_SUBSCRIPTION_UPDATED,
        BillingEventType.CUSTOMER_SUBSCRIPTION_DELETED,
        BillingEventType.INVOICE_PAID,
        BillingEventType.INVOICE_PAYMENT_FAILED,
    }
)

# Stripe's subscription statuses in ours. `incomplete` (first payment pending) changes
# nothing: the user stays where they are until Stripe says more.
STATUS_FROM_STRIPE = {
    "active": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.TRIALING,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "paused": SubscriptionStatus.PAST_DUE,
    "canceled": SubscriptionStatus.CANCELLED,
    "incomplete_expired": SubscriptionStatus.CANCELLED,
}
LOOKUP_KEY_RE = re.compile(r"^a1zap_(?P<plan>[a-z]+)_(?P<interval>month|year)$")


def _timestamp(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC) if value else None


def _sync_with_djstripe(event: dict[str, Any]) -> None:
    """Let dj-stripe sync its models; an unreachable Stripe raises `BillingUnavailable`, so
    the task applying the event tries again later."""
    if not stripe_configured():
        logger.warning("STRIPE_SECRET_KEY is unset: dj-stripe does not sync event %s", event["id"])
        return
    from djstripe.models import Event

    try:
        Event.process(data=event, api_key=settings.STRIPE_SECRET_KEY)
    except stripe.StripeError as error:
        if stripe_outage(error):
            raise BillingUnavailable("Stripe cannot be reached to sync this event.") from None
        logger.exception("dj-stripe could not process event %s", event["id"])
    except Exception:
        # Our own state comes from the payload; dj-stripe's copy is a convenience.
        logger.exception("dj-stripe could not process event %s", event["id"])


def _subscription_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """Plan, status and period of a Stripe Subscription object, as our fields."""
    items = (obj.get("items") or {}).get("data") or [{}]
    item = items[0]
    price = item.get("price") or {}
    match = LOOKUP_KEY_RE.match(price.get("lookup_key") or "")
    return {
        "plan_id": match["plan"] if match and match["plan"] in PlanId.values else None,
        "status": STATUS_FROM_STRIPE.get(obj.get("status") or ""),
        # Newer API versions keep the period on the item, older ones on the subscription.
        "current_period_start": _timestamp(
            item.get("current_period_start") or obj.get("current_period_start")
        ),
        "current_period_end": _timestamp(
            item.get("current_period_end") or obj.get("current_period_end")
        ),
        # When the cancellation was asked for, and when it takes (or took) effect: a
        # subscription set to cancel at period end is still active, with both set.
        "cancelled_at": _timestamp(obj.get("canceled_at") or obj.get("ended_at")),
        "ends_at": _timestamp(obj.get("ended_at") or obj.get("cancel_at")),
        "cancel_scheduled": bool(obj.get("cancel_at_period_end") or obj.get("cancel_at")),
    }


def _user_id_for(event_type: str, obj: dict[str, Any]) -> str | None:
    """Whose event this is: our user id in metadata, else through the Stripe customer id."""
    metadata = obj.get("metadata") or {}
    user_id = metadata.get("user_id") or obj.get("client_reference_id")
    if not user_id and event_type.startswith("invoice."):
        details = (obj.get("parent") or {}).get("subscription_details") or {}
        user_id = (details.get("metadata") or obj.get("subscription_details") or {}).get("user_id")
    if user_id:
        return str(user_id)
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if not customer:
        return None
    return (
        UserSubscription.objects.filter(stripe_customer_id=customer)
        .values_list("user_id", flat=True)
        .first()
    )


def _amount(event_type: str, obj: dict[str, Any]) -> tuple[Decimal | None, str | None, str | None]:
    """The ledger's amount, currency and invoice id for an event."""
    if event_type.startswith("invoice."):
        cents = (
            obj.get("amount_paid")
            if event_type == BillingEventType.INVOICE_PAID
            else obj.get("amount_due")
        )
        amount = Decimal(cents) / 100 if cents is not None else None
        return amount, (obj.get("currency") or "usd").upper(), obj.get("id")
    if event_type == BillingEventType.CHECKOUT_SESSION_COMPLETED:
        cents = obj.get("amount_total")
        amount = Decimal(cents) / 100 if cents is not None else None
        return amount, (obj.get("currency") or "usd").upper(), obj.get("invoice")
    return None, None, None


def stripe_event_apply(*, event: dict[str, Any]) -> str:
    """Apply one verified Stripe event; return what happened (for logs and tests)."""
    event_type = event.get("type", "")
    if event_type not in HANDLED_EVENTS:
        return "ignored"
    _sync_with_djstripe(event)
    obj = event["data"]["object"]
    user_id = _user_id_for(event_type, obj)
    if user_id is None:
        logger.warning("Stripe event %s (%s) names no user we know", event["id"], event_type)
        return "unknown_user"
    created = _timestamp(event["created"]) or dt.datetime.now(dt.UTC)
    actor = Actor.stripe(event["id"])
    with transaction.atomic():
        subscription = subscription_lock_for_user(user_id=user_id, actor=actor)
        amount, currency, invoice_id = _amount(event_type, obj)
        try:
            with transaction.atomic():
                BillingEvent.objects.create(
                    user_id=user_id,
                    event_type=event_type,
                    amount=amount,
                    currency=currency or "USD",
                    invoice_id=invoice_id,
                    subscription=subscription,
                    description=f"Stripe {event_type}",
                    metadata={"stripe_event_id": event["id"], "stripe_object_id": obj.get("id")},
                )
        except IntegrityError:
            return "duplicate"
        if event_type == BillingEventType.INVOICE_PAYMENT_FAILED:
            event_emit(
                owner_id=user_id,
                event_type="invoice.payment_failed",
                data=payment_failed_event_data(user_id, obj, amount=amount, currency=currency),
            )
        before = subscription_snapshot(subscription)
        changed = _apply_state(subscription, event_type, obj, created)
        if changed:
            subscription.save(update_fields=[*changed, "updated_at"])
            subscription_audit(
                subscription,
                actor=actor,
                action="subscription.updated",
                before=before,
                context={"stripe_event_type": event_type},
            )
    return "applied" if changed else "recorded"


def payment_failed_event_data(
    user_id: str, invoice: dict[str, Any], *, amount: Decimal | None, currency: str | None
) -> dict[str, Any]:
    """What an invoice.payment_failed webhook tells the owner: which invoice, how much, and
    when Stripe tries again (null when it will not)."""
    return {
        "owner_id": user_id,
        "invoice_id": invoice.get("id"),
        "amount_due": str(amount) if amount is not None else None,
        "currency": currency or "USD",
        "attempt_count": invoice.get("attempt_count"),
        "next_payment_attempt": _timestamp(invoice.get("next_payment_attempt")),
        "hosted_invoice_url": invoice.get("hosted_invoice_url"),
    }


def _live_subscription_id(event_type: str, obj: dict[str, Any]) -> str | None:
    """The Stripe subscription an event shows alive (it can still charge), if any."""
    if event_type == BillingEventType.CHECKOUT_SESSION_COMPLETED:
        return obj.get("subscription") or None
    if (
        event_type.startswith("customer.subscription.")
        and event_type != BillingEventType.CUSTOMER_SUBSCRIPTION_DELETED
        and (obj.get("status") or "") not in ENDED_STATUSES
    ):
        return obj.get("id") or None
    return None


def _apply_state(
    subscription: UserSubscription, event_type: str, obj: dict[str, Any], created: dt.datetime
) -> list[str]:
    """Move the subscription's state as the event says, unless a newer event already did.

    Nothing revives an ended subscription: for a deleted user, or for the Stripe subscription
    a cancelled row was cancelled with, only an ending is applied. A deleted user's
    subscription that an event shows alive (a checkout completed after the deletion) is
    cancelled at Stripe.
    """
    changed: list[str] = []

    def put(field: str, value: Any) -> None:
        if getattr(subscription, field) != value:
            setattr(subscription, field, value)
            changed.append(field)

    if subscription.user_deleted_at is not None:
        live = _live_subscription_id(event_type, obj)
        if live:
            logger.warning("Stripe subscription %s of a deleted user: cancelling it", live)
            stripe_cancellation_request(stripe_subscription_id=live, user_id=subscription.user_id)
        if event_type != BillingEventType.CUSTOMER_SUBSCRIPTION_DELETED:
            return changed

    customer = obj.get("customer")
    if isinstance(customer, str) and not subscription.stripe_customer_id:
        put("stripe_customer_id", customer)
    if event_type == BillingEventType.CHECKOUT_SESSION_COMPLETED:
        # A cancelled row keeps the id it was cancelled with (what the revival check below
        # compares with) until the new subscription's own event moves it.
        if obj.get("subscription") and subscription.status != SubscriptionStatus.CANCELLED:
            put("stripe_subscription_id", obj["subscription"])
        return changed

    if subscription.stripe_state_at and created < subscription.stripe_state_at:
        logger.info("Stripe %s is older than the state applied; not rolling back", event_type)
        return changed

    if event_type.startswith("customer.subscription."):
        fields = _subscription_fields(obj)
        if event_type == BillingEventType.CUSTOMER_SUBSCRIPTION_DELETED:
            fields["status"] = SubscriptionStatus.CANCELLED
        if fields["status"] is None:
            return changed  # `incomplete`: nothing is decided yet
        ending = fields["status"] == SubscriptionStatus.CANCELLED
        if (
            not ending
            and subscription.status == SubscriptionStatus.CANCELLED
            and obj.get("id") == subscription.stripe_subscription_id
        ):
            # Stripe never reactivates a cancelled subscription: this event is stale.
            logger.info("Stripe %s would revive ended %s; ignored", event_type, obj.get("id"))
            return changed
        put("stripe_subscription_id", obj.get("id"))
        for field in ("current_period_start", "current_period_end"):
            if fields[field]:
                put(field, fields[field])
        if ending:
            changed.extend(
                subscription_end(
                    subscription,
                    cancelled_at=fields["cancelled_at"] or created,
                    ends_at=fields["ends_at"] or created,
                )
            )
        else:
            put("status", fields["status"])
            scheduled = fields["cancel_scheduled"]
            put("cancelled_at", fields["cancelled_at"] if scheduled else None)
            put("ends_at", fields["ends_at"] if scheduled else None)
            if fields["plan_id"]:
                changed.extend(set_plan_and_limits(subscription, fields["plan_id"]))
    elif event_type == BillingEventType.INVOICE_PAID:
        if subscription.status == SubscriptionStatus.PAST_DUE:
            put("status", SubscriptionStatus.ACTIVE)
    elif (
        event_type == BillingEventType.INVOICE_PAYMENT_FAILED
        and subscription.status != SubscriptionStatus.CANCELLED
    ):
        put("status", SubscriptionStatus.PAST_DUE)

    if subscription.status == SubscriptionStatus.PAST_DUE:
        if subscription.past_due_since is None:
            put("past_due_since", created)
    else:
        put("past_due_since", None)
    put("stripe_state_at", created)
    return list(dict.fromkeys(changed))
