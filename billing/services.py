"""Writes to subscriptions, plans and the billing ledger. Other apps call these, not the models.

Each change to a subscription or a plan is also recorded in the audit trail, in the same
transaction, with the actor the caller passes.
"""

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.actors import SYSTEM, Actor, actor_coerce
from audit.models import TargetType
from audit.services import AuditedModel, audit_diff
from billing.models import (
    BillingEvent,
    BillingEventType,
    PlanId,
    SubscriptionPlan,
    SubscriptionStatus,
    UserSubscription,
)
from billing.selectors import plan_total_limit
from notifications.events import event_emit

PAID_STATUSES = (
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.PAST_DUE,
)


# Fields of a subscription the audit trail follows (Stripe's bookkeeping `stripe_state_at`
# and the timestamps are left out).
AUDITED_SUBSCRIPTION_FIELDS = (
    "plan_id", "status", "max_personal_agents", "max_work_agents", "max_total_agents",
    "stripe_customer_id", "stripe_subscription_id", "current_period_start",
    "current_period_end", "cancelled_at", "ends_at", "past_due_since", "user_deleted_at",
)  # fmt: skip


SUBSCRIPTION_TRAIL = AuditedModel(TargetType.SUBSCRIPTION, AUDITED_SUBSCRIPTION_FIELDS)
# The audited fields of a subscription, to diff before and after a change.
subscription_snapshot = SUBSCRIPTION_TRAIL.snapshot


def subscription_audit(
    subscription: UserSubscription,
    *,
    actor: Actor,
    action: str,
    before: dict[str, Any],
    context: dict[str, Any] | None = None,
) -> None:
    """Record what changed in the subscription since `before` (nothing if nothing did), and
    tell the owner's webhooks (`subscription.updated`) in the same transaction."""
    entry = SUBSCRIPTION_TRAIL.record(
        subscription, actor=actor, action=action, before=before,
        owner_id=subscription.user_id, context=context,
    )  # fmt: skip
    if entry is not None and before:
        after = subscription_snapshot(subscription)
        changed = sorted(field for field in after if after[field] != before.get(field))
        event_emit(
            owner_id=subscription.user_id,
            event_type="subscription.updated",
            data=subscription_event_data(subscription, changed=changed, reason=action),
        )


# What a subscription.updated webhook tells the owner (no Stripe ids).
SUBSCRIPTION_EVENT_FIELDS = (
    "plan_id", "status", "max_personal_agents", "max_work_agents", "max_total_agents",
    "current_period_start", "current_period_end", "cancelled_at", "ends_at", "past_due_since",
)  # fmt: skip


def subscription_event_data(
    subscription: UserSubscription, *, changed: list[str], reason: str
) -> dict[str, Any]:
    data: dict[str, Any] = {"owner_id": subscription.user_id}
    data.update({field: getattr(subscription, field) for field in SUBSCRIPTION_EVENT_FIELDS})
    data["changed"] = [field for field in changed if field in SUBSCRIPTION_EVENT_FIELDS]
    data["reason"] = reason
    return data


def subscription_lock_for_user(*, user_id: str, actor: Actor = SYSTEM) -> UserSubscription:
    """Return the user's subscription row locked FOR UPDATE, creating it (free) if missing.

    Must run inside a transaction. The INSERT … ON CONFLICT DO NOTHING makes creation
    race-safe: two callers for a new user end up locking the same single row. A row created
    here is recorded in the audit trail as `subscription.created`, by `actor`.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO user_subscriptions (user_id) VALUES (%s) ON CONFLICT (user_id) DO NOTHING",
            [user_id],
        )
        created = cursor.rowcount == 1
    subscription = UserSubscription.objects.select_for_update().get(user_id=user_id)
    if created:
        subscription_audit(subscription, actor=actor, action="subscription.created", before={})
    return subscription


def subscription_end(
    subscription: UserSubscription, *, cancelled_at: dt.datetime, ends_at: dt.datetime
) -> list[str]:
    """Put the subscription where an ended one is, whoever ended it; return the changed fields.

    Cancelled (asked at `cancelled_at`, ended at `ends_at`), on the free plan and its limits,
    not past due. Stripe's `customer.subscription.deleted` and the deletion of the user both
    end here, so both leave the row the same. One already ended keeps its first dates.
    """
    changed = set_plan_and_limits(subscription, PlanId.FREE)
    if subscription.status != SubscriptionStatus.CANCELLED or subscription.cancelled_at is None:
        subscription.cancelled_at = cancelled_at
        subscription.ends_at = ends_at
        changed.extend(["cancelled_at", "ends_at"])
    updates = {"status": SubscriptionStatus.CANCELLED, "past_due_since": None}
    for field, value in updates.items():
        if getattr(subscription, field) != value:
            setattr(subscription, field, value)
            changed.append(field)
    return changed


def stripe_cancellation_record(*, stripe_subscription_id: str, user_id: str) -> None:
    """Record, in the caller's transaction, that Stripe must cancel this subscription (the
    `stripe_pending_cancellations` outbox that `invoicing.stripe_cancellations` works off).
    Recording it twice records it once."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stripe_pending_cancellations (stripe_subscription_id, user_id) "
            "VALUES (%s, %s) ON CONFLICT (stripe_subscription_id) DO NOTHING",
            [stripe_subscription_id, user_id],
        )


@transaction.atomic
def subscription_end_for_deleted_user(
    *, user_id: str, reason: str, actor: Actor = SYSTEM
) -> UserSubscription:
    """The user is gone: end their subscription as Stripe's own deletion would, and have
    Stripe cancel it: the cancellation is recorded here (`stripe_cancellation_record`) and
    sent by `invoicing.stripe_cancellations`, which the caller asks to try after commit.

    The row stays (it is created, free, if the user never had one), marked `user_deleted_at`,
    so that no later Stripe event, a checkout completed after the deletion included, can make
    the user pay again (`invoicing.stripe_events`). The ledger records the cancellation of a row
    that was not cancelled yet. Safe to repeat: a second call changes and sends nothing.
    """
    existed = UserSubscription.objects.filter(user_id=user_id).exists()
    subscription = subscription_lock_for_user(user_id=user_id, actor=actor)
    if subscription.user_deleted_at is not None:
        return subscription
    before = subscription_snapshot(subscription)
    was_cancelled = subscription.status == SubscriptionStatus.CANCELLED
    now = timezone.now()
    changed = subscription_end(subscription, cancelled_at=now, ends_at=now)
    subscription.user_deleted_at = now
    subscription.save(update_fields=[*changed, "user_deleted_at", "updated_at"])
    if subscription.stripe_subscription_id:
        stripe_cancellation_record(
            stripe_subscription_id=subscription.stripe_subscription_id, user_id=user_id
        )
    if existed and not was_cancelled:
        BillingEvent.objects.create(
            user_id=user_id,
            event_type=BillingEventType.SUBSCRIPTION_CANCELLED,
            subscription=subscription,
            description=reason,
            metadata={"reason": reason, "plan_id": before["plan_id"]},
        )
    subscription_audit(
        subscription,
        actor=actor,
        action="subscription.cancelled",
        before=before,
        context={"reason": reason},
    )
    return subscription


# --- plans and limits ---------------------------------------------------------------------


def _limits_of(plan: SubscriptionPlan) -> dict[str, int]:
    return {
        "max_personal_agents": plan.max_personal_agents,
        "max_work_agents": plan.max_work_agents,
        "max_total_agents": plan_total_limit(plan),
    }


def set_plan_and_limits(subscription: UserSubscription, plan_id: str) -> list[str]:
    """Move the subscription to a plan and its limits; return the changed field names."""
    if subscription.plan_id == plan_id:
        return []
    plan = SubscriptionPlan.objects.get(pk=plan_id)
    subscription.plan_id = plan_id
    for field, value in _limits_of(plan).items():
        setattr(subscription, field, value)
    return ["plan_id", "max_personal_agents", "max_work_agents", "max_total_agents"]


@transaction.atomic
def subscription_change_plan(*, user_id: str, plan_id: str, actor: Actor | str) -> UserSubscription:
    """Put a user on a plan (its limits too) by hand; the ledger and the audit trail record
    who did it.

    Nothing is deleted on a downgrade: agents past the new limits stay, and only new ones
    are refused until the user is back within them.
    """
    actor = actor_coerce(actor)
    subscription = subscription_lock_for_user(user_id=user_id, actor=actor)
    before = subscription_snapshot(subscription)
    previous = subscription.plan_id
    changed = set_plan_and_limits(subscription, plan_id)
    if changed:
        subscription.save(update_fields=[*changed, "updated_at"])
        BillingEvent.objects.create(
            user_id=user_id,
            event_type=BillingEventType.PLAN_CHANGED,
            subscription=subscription,
            # The owner reads this description: who did it stays in the audit trail.
            description=f"Plan changed from {previous} to {plan_id}.",
            metadata={"from": previous, "to": plan_id, "actor": actor.label},
        )
        subscription_audit(
            subscription, actor=actor, action="subscription.plan_changed", before=before
        )
    return subscription


@transaction.atomic
def subscription_override_limits(
    *,
    user_id: str,
    max_personal_agents: int | None,
    max_work_agents: int | None,
    max_total_agents: int | None,
    actor: Actor | str,
) -> UserSubscription:
    """Set a user's agent limits apart from their plan (-1 unlimited, None = the plan's)."""
    actor = actor_coerce(actor)
    subscription = subscription_lock_for_user(user_id=user_id, actor=actor)
    snapshot = subscription_snapshot(subscription)
    before = {field: getattr(subscription, field) for field in LIMIT_FIELDS}
    subscription.max_personal_agents = max_personal_agents
    subscription.max_work_agents = max_work_agents
    subscription.max_total_agents = max_total_agents
    after = {field: getattr(subscription, field) for field in LIMIT_FIELDS}
    if before != after:
        subscription.save(update_fields=[*LIMIT_FIELDS, "updated_at"])
        BillingEvent.objects.create(
            user_id=user_id,
            event_type=BillingEventType.LIMITS_OVERRIDDEN,
            subscription=subscription,
            description="Agent limits changed.",
            metadata={"from": before, "to": after, "actor": actor.label},
        )
        subscription_audit(
            subscription, actor=actor, action="subscription.limits_overridden", before=snapshot
        )
    return subscription


LIMIT_FIELDS = ("max_personal_agents", "max_work_agents", "max_total_agents")

# Plan fields the audit trail leaves out: they change on every save.
PLAN_UNAUDITED_FIELDS = frozenset({"created_at", "updated_at"})


def _plan_snapshot(plan: SubscriptionPlan | None) -> dict[str, Any]:
    if plan is None:
        return {}
    return {
        field.attname: getattr(plan, field.attname)
        for field in SubscriptionPlan._meta.concrete_fields
        if field.attname not in PLAN_UNAUDITED_FIELDS
    }


@transaction.atomic
def plan_save(*, plan: SubscriptionPlan, actor: Actor) -> SubscriptionPlan:
    """Create or change a plan (staff, in the admin), recorded in the audit trail.

    Subscriptions keep the limits they have; the plan's new limits apply to users who move
    to it from now on (and to those whose own limits are unset).
    """
    stored = SubscriptionPlan.objects.select_for_update().filter(pk=plan.pk).first()
    plan.save()
    audit_diff(
        actor=actor,
        action="plan.created" if stored is None else "plan.updated",
        target_type=TargetType.PLAN,
        target_id=plan.pk,
        before=_plan_snapshot(stored),
        after=_plan_snapshot(plan),
    )
    return plan
