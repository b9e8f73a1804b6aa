"""Plans, each user's subscription, and the ledger of billing events (seed tables)."""

import uuid

from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Now

from core.schema import SeedIndex

UNLIMITED = -1


class PlanId(models.TextChoices):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    PAST_DUE = "past_due"
    TRIALING = "trialing"


class BillingEventType(models.TextChoices):
    """What a ledger row records: a staff change, the monthly close, or the Stripe event it
    came from (stored under Stripe's own name). Each label is the stored value."""

    PLAN_CHANGED = "plan_changed", "plan_changed"
    LIMITS_OVERRIDDEN = "limits_overridden", "limits_overridden"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled", "subscription_cancelled"
    USAGE_PERIOD_CLOSED = "usage_period_closed", "usage_period_closed"
    CHECKOUT_SESSION_COMPLETED = "checkout.session.completed", "checkout.session.completed"
    CUSTOMER_SUBSCRIPTION_CREATED = "customer.subscription.created", "customer.subscription.created"
    CUSTOMER_SUBSCRIPTION_DELETED = "customer.subscription.deleted", "customer.subscription.deleted"
    CUSTOMER_SUBSCRIPTION_UPDATED = "customer.subscription.updated", "customer.subscription.updated"
    INVOICE_PAID = "invoice.paid", "invoice.paid"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed", "invoice.payment_failed"


class SubscriptionPlan(models.Model):
    """A subscription tier with its prices and limits; -1 means unlimited."""

    id = models.TextField(primary_key=True)
    name = models.TextField()
    description = models.TextField(null=True, blank=True)

    price_monthly = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    price_yearly = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.TextField(null=True, default="USD", db_default="USD")

    max_personal_agents = models.IntegerField()
    max_work_agents = models.IntegerField()
    max_messages_per_month = models.IntegerField(null=True, blank=True)
    max_storage_gb = models.IntegerField(null=True, blank=True)

    features = models.JSONField(null=True, blank=True, default=list, db_default=[])
    is_active = models.BooleanField(null=True, default=True, db_default=True)

    # Beyond the seed: what usage, quotas and billing need.
    # `max_messages_per_month` is the month's included messages (NULL = unlimited). Past it, a
    # hard-capped plan refuses messages (429 quota_exceeded); otherwise the monthly close bills
    # each extra message at `overage_price_per_message`.
    messages_hard_cap = models.BooleanField(default=False, db_default=False)
    overage_price_per_message = models.DecimalField(
        max_digits=10, decimal_places=6, default=0, db_default=0
    )
    # Unit prices behind agent_usage.estimated_cost.
    price_per_message = models.DecimalField(
        max_digits=10, decimal_places=6, default=0, db_default=0
    )
    price_per_api_call = models.DecimalField(
        max_digits=10, decimal_places=6, default=0, db_default=0
    )
    price_per_compute_second = models.DecimalField(
        max_digits=10, decimal_places=6, default=0, db_default=0
    )
    # Requests per minute, per owner and per app.
    owner_requests_per_minute = models.IntegerField(default=120, db_default=120)
    app_requests_per_minute = models.IntegerField(default=600, db_default=600)
    # Days a past_due subscription keeps working before its agents' apps are refused.
    past_due_grace_days = models.IntegerField(default=7, db_default=7)

    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())

    class Meta:
        db_table = "subscription_plans"
        ordering = ["price_monthly", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner_requests_per_minute__gt=0, app_requests_per_minute__gt=0),
                name="subscription_plans_positive_rates",
            ),
            # NULL is "unlimited" for messages; a -1 (the seed's "unlimited" for agents) would
            # refuse every message on a hard cap and bill every message as overage.
            models.CheckConstraint(
                condition=Q(max_messages_per_month__isnull=True) | Q(max_messages_per_month__gte=0),
                name="subscription_plans_messages_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def stripe_lookup_key(self, interval: str) -> str:
        """The lookup key of this plan's Stripe Price for `month` or `year`."""
        return f"a1zap_{self.id}_{interval}"


class UserSubscription(models.Model):
    """One Stack Auth user's plan, status, limits and Stripe references."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    user_id = models.TextField()

    plan_id = models.TextField(choices=PlanId.choices, default=PlanId.FREE, db_default=PlanId.FREE)
    status = models.TextField(
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.ACTIVE,
        db_default=SubscriptionStatus.ACTIVE,
    )

    max_personal_agents = models.IntegerField(null=True, blank=True, default=1, db_default=1)
    max_work_agents = models.IntegerField(null=True, blank=True, default=1, db_default=1)
    max_total_agents = models.IntegerField(null=True, blank=True, default=2, db_default=2)

    stripe_customer_id = models.TextField(null=True, blank=True)
    stripe_subscription_id = models.TextField(null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Beyond the seed: when a cancelled subscription stops (or stopped) being paid for. A
    # subscription cancelled "at period end" stays active, on its plan, until then.
    ends_at = models.DateTimeField(null=True, blank=True)

    # Beyond the seed: when the subscription became past_due (for the grace period), and the
    # `created` time of the last Stripe event applied, so an older event cannot roll back.
    past_due_since = models.DateTimeField(null=True, blank=True)
    stripe_state_at = models.DateTimeField(null=True, blank=True)
    # When the Stack Auth user was deleted. The row stays, cancelled on the free plan, and no
    # Stripe event can make it paid again (see invoicing.stripe_events).
    user_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "user_subscriptions"
        constraints = [
            models.UniqueConstraint(fields=["user_id"], name="user_subscriptions_user_id_key"),
            models.CheckConstraint(condition=Q(plan_id__in=PlanId.values), name="valid_plan"),
            models.CheckConstraint(
                condition=Q(status__in=SubscriptionStatus.values),
                # The seed names this CHECK like the one on a1_agents; PostgreSQL scopes
                # CHECK names per table (see SILENCED_SYSTEM_CHECKS).
                name="valid_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.plan_id}"


class BillingEvent(models.Model):
    """One line of the billing ledger; never updated once written."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    user_id = models.TextField()

    event_type = models.TextField(choices=BillingEventType.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.TextField(null=True, default="USD", db_default="USD")
    description = models.TextField(null=True, blank=True)

    subscription = models.ForeignKey(
        UserSubscription,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_column="subscription_id",
        related_name="billing_events",
    )
    invoice_id = models.TextField(null=True, blank=True)

    metadata = models.JSONField(null=True, blank=True, default=dict, db_default={})

    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())

    class Meta:
        db_table = "billing_events"
        indexes = [
            models.Index(fields=["user_id"], name="idx_billing_events_user_id"),
            models.Index(fields=["event_type"], name="idx_billing_events_type"),
            SeedIndex(fields=["user_id", "-created_at"], name="billing_events_user_newest"),
        ]
        constraints = [
            # A Stripe event is recorded once, however often Stripe delivers it.
            models.UniqueConstraint(
                KeyTextTransform("stripe_event_id", "metadata"),
                condition=Q(metadata__has_key="stripe_event_id"),
                name="billing_events_stripe_event_once",
            ),
            # The monthly close writes one row per user and month, however often it runs.
            models.UniqueConstraint(
                "user_id",
                KeyTextTransform("period", "metadata"),
                condition=Q(event_type=BillingEventType.USAGE_PERIOD_CLOSED),
                name="billing_events_period_closed_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} for {self.user_id}"


class StripePendingCancellation(models.Model):
    """A Stripe subscription we must cancel at Stripe and have not yet seen Stripe cancel.

    Written in the same transaction as the decision to cancel, deleted once Stripe has it
    (see invoicing.stripe_cancellations), so a cancellation is never lost to a Stripe outage.
    """

    stripe_subscription_id = models.TextField(primary_key=True)
    user_id = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    attempts = models.IntegerField(default=0, db_default=0)
    last_error = models.TextField(null=True, blank=True)
    # Due from then on; an attempt in progress holds it a few minutes ahead (its lease).
    next_attempt_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "stripe_pending_cancellations"
        indexes = [
            models.Index(fields=["next_attempt_at"], name="stripe_cancellations_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(attempts__gte=0), name="stripe_cancellations_attempts_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"cancel {self.stripe_subscription_id} for {self.user_id}"
