"""Plans, subscriptions and the billing ledger in the admin.

A plan's or a subscription's change goes through `billing.services`, which records it in
the ledger (subscriptions) and in the audit trail (both), with the staff member as actor.
"""

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from djstripe.models import APIKey

from audit.actors import Actor
from billing.models import (
    BillingEvent,
    BillingEventType,
    StripePendingCancellation,
    SubscriptionPlan,
    UserSubscription,
)
from billing.services import (
    LIMIT_FIELDS,
    plan_save,
    subscription_change_plan,
    subscription_lock_for_user,
    subscription_override_limits,
)
from console.admin_base import (
    ExactIdSearchAdmin,
    LargeTableAdmin,
    ReadOnlyAdmin,
    StaffPermissionsAdmin,
)
from console.admin_widgets import CompactTextAdmin

# dj-stripe's admin would store a Stripe API key in the database; we never store one (see
# invoicing.djstripe_accounts). dj-stripe comes first in INSTALLED_APPS, so its admin is loaded.
admin.site.unregister(APIKey)

# Every event type the ledger holds: staff changes, the monthly close, Stripe's events.
LEDGER_EVENT_TYPES = tuple(BillingEventType.values)


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(StaffPermissionsAdmin, CompactTextAdmin):
    staff_resource = "plan"
    list_display = (
        "id", "name", "price_monthly", "price_yearly", "max_personal_agents",
        "max_work_agents", "max_messages_per_month", "messages_hard_cap", "is_active",
    )  # fmt: skip
    list_filter = ("is_active",)
    readonly_fields = ("created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A plan's id is referenced by subscriptions and Stripe lookup keys: fixed once made.
        return ("id", *self.readonly_fields) if obj else self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: SubscriptionPlan, form: Any, change: bool
    ) -> None:
        plan_save(plan=obj, actor=Actor.staff(request.user))


def _exact_stripe_or_user_id(term: str) -> Q:
    """Search on the one column a term can be, so each search uses one index."""
    if term.startswith("cus_"):
        return Q(stripe_customer_id=term)
    if term.startswith("sub_"):
        return Q(stripe_subscription_id=term)
    return Q(user_id=term)


@admin.register(UserSubscription)
class UserSubscriptionAdmin(StaffPermissionsAdmin, LargeTableAdmin, ExactIdSearchAdmin):
    """Staff change a user's plan or limits here; each change goes through the billing
    services and is recorded in the ledger and the audit trail. Stripe's fields follow
    Stripe's webhooks."""

    staff_resource = "subscription"

    list_display = ("user_id", "plan_id", "status", "current_period_end", "cancelled_at",
                    "ends_at", "updated_at")  # fmt: skip
    list_filter = ("plan_id", "status")
    search_fields = ("user_id",)  # shows the search box; see search_other
    search_help_text = "Exact user id, Stripe customer id (cus_…) or subscription id (sub_…)."
    fields = (
        "user_id", "plan_id", *LIMIT_FIELDS, "status", "stripe_customer_id",
        "stripe_subscription_id", "current_period_start", "current_period_end",
        "cancelled_at", "ends_at", "past_due_since", "user_deleted_at", "stripe_state_at",
        "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = (
        "status", "stripe_customer_id", "stripe_subscription_id", "current_period_start",
        "current_period_end", "cancelled_at", "ends_at", "past_due_since", "user_deleted_at",
        "stripe_state_at", "created_at", "updated_at",
    )  # fmt: skip
    ordering = ("user_id",)  # the unique index on user_id

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        return queryset.filter(_exact_stripe_or_user_id(term))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("user_id", *self.readonly_fields) if obj else self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: UserSubscription, form: Any, change: bool
    ) -> None:
        actor = Actor.staff(request.user)
        if not change:
            created = subscription_lock_for_user(user_id=obj.user_id, actor=actor)
            obj.pk = created.pk
            obj._state.adding = False
        if "plan_id" in form.changed_data:
            subscription_change_plan(user_id=obj.user_id, plan_id=obj.plan_id, actor=actor)
        if any(field in form.changed_data for field in LIMIT_FIELDS):
            subscription_override_limits(
                user_id=obj.user_id,
                max_personal_agents=form.cleaned_data["max_personal_agents"],
                max_work_agents=form.cleaned_data["max_work_agents"],
                max_total_agents=form.cleaned_data["max_total_agents"],
                actor=actor,
            )
        obj.refresh_from_db()


class EventTypeFilter(admin.SimpleListFilter):
    """The known event types (Django's default would run SELECT DISTINCT over the ledger)."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return [(event_type, event_type) for event_type in LEDGER_EVENT_TYPES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(event_type=value) if value else queryset


@admin.register(BillingEvent)
class BillingEventAdmin(ReadOnlyAdmin, ExactIdSearchAdmin):
    """The ledger: read-only, newest first."""

    staff_resource = "billing_event"
    list_display = ("created_at", "user_id", "event_type", "amount", "currency", "invoice_id")
    list_filter = (EventTypeFilter,)
    search_fields = ("user_id",)  # shows the search box; see search_other
    search_help_text = "Exact user id, invoice id (in_…) or Stripe customer id (cus_…)."
    list_select_related = ("subscription",)
    raw_id_fields = ("subscription",)
    # A user's events newest first, through the (user_id, created_at DESC) index.
    ordering = ("user_id", "-created_at")

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        if term.startswith("in_"):
            return queryset.filter(invoice_id=term)
        if term.startswith("cus_"):
            return queryset.filter(subscription__stripe_customer_id=term)
        return queryset.filter(user_id=term)


@admin.register(StripePendingCancellation)
class StripePendingCancellationAdmin(ReadOnlyAdmin, CompactTextAdmin):
    """Subscriptions Stripe has yet to cancel (deleted users'), oldest due first; read-only.

    `manage.py retry_stripe_cancellations` works them off; a row with many attempts and an
    error is one that needs a look."""

    staff_resource = "stripe_cancellation"
    list_display = ("stripe_subscription_id", "user_id", "attempts", "next_attempt_at",
                    "last_error", "created_at")  # fmt: skip
    search_fields = ("=stripe_subscription_id", "=user_id")
    ordering = ("next_attempt_at",)
    readonly_fields = ("stripe_subscription_id", "user_id", "attempts", "next_attempt_at",
                       "last_error", "created_at")  # fmt: skip
