"""Plans, each user's subscription, and the ledger of billing events (seed tables)."""

import uuid

from django.contrib.postgres.functions import RandomUUID, TransactionNow
from django.db import models
from django.db.models import Q

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

    created_at = models.DateTimeField(auto_now_add=True, db_default=TransactionNow())
    updated_at = models.DateTimeField(auto_now=True, db_default=TransactionNow())

    class Meta:
        db_table = "subscription_plans"
        ordering = ["price_monthly", "id"]

    def __str__(self) -> str:
        return self.name


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

    event_type = models.TextField()
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
        ]

    def __str__(self) -> str:
        return f"{self.event_type} for {self.user_id}"
