"""Writes to subscriptions and the billing ledger. Other apps call these, not the models."""

from django.db import connection, transaction
from django.utils import timezone

from billing.models import BillingEvent, SubscriptionStatus, UserSubscription


def subscription_lock_for_user(*, user_id: str) -> UserSubscription:
    """Return the user's subscription row locked FOR UPDATE, creating it (free) if missing.

    Must run inside a transaction. The INSERT … ON CONFLICT DO NOTHING makes creation
    race-safe: two callers for a new user end up locking the same single row.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO user_subscriptions (user_id) VALUES (%s) ON CONFLICT (user_id) DO NOTHING",
            [user_id],
        )
    return UserSubscription.objects.select_for_update().get(user_id=user_id)


@transaction.atomic
def subscription_cancel_for_user(*, user_id: str, reason: str) -> UserSubscription | None:
    """Mark the user's subscription cancelled and record it in the ledger; None if they had none.

    Cancelling is idempotent: an already cancelled subscription is left as it is.
    """
    subscription = UserSubscription.objects.select_for_update().filter(user_id=user_id).first()
    if subscription is None or subscription.status == SubscriptionStatus.CANCELLED:
        return subscription
    subscription.status = SubscriptionStatus.CANCELLED
    subscription.cancelled_at = timezone.now()
    subscription.save(update_fields=["status", "cancelled_at", "updated_at"])
    BillingEvent.objects.create(
        user_id=user_id,
        event_type="subscription_cancelled",
        subscription=subscription,
        description=reason,
        metadata={"reason": reason, "plan_id": subscription.plan_id},
    )
    return subscription
