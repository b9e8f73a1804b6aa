from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from a1zap.admin_widgets import CompactTextAdmin
from billing.models import BillingEvent, SubscriptionPlan, UserSubscription
from billing.services import LIMIT_FIELDS, subscription_change_plan, subscription_override_limits


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(CompactTextAdmin):
    list_display = (
        "id", "name", "price_monthly", "price_yearly", "max_personal_agents",
        "max_work_agents", "max_messages_per_month", "messages_hard_cap", "is_active",
    )  # fmt: skip
    list_filter = ("is_active",)
    readonly_fields = ("created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A plan's id is referenced by subscriptions and Stripe lookup keys: fixed once made.
        return ("id", *self.readonly_fields) if obj else self.readonly_fields


@admin.register(UserSubscription)
class UserSubscriptionAdmin(CompactTextAdmin):
    """Staff change a user's plan or limits here; each change goes through the billing
    services and is recorded in the ledger. Stripe's fields follow Stripe's webhooks."""

    list_display = ("user_id", "plan_id", "status", "current_period_end", "updated_at")
    list_filter = ("plan_id", "status")
    search_fields = ("=user_id", "=stripe_customer_id", "=stripe_subscription_id")
    fields = (
        "user_id", "plan_id", *LIMIT_FIELDS, "status", "stripe_customer_id",
        "stripe_subscription_id", "current_period_start", "current_period_end",
        "cancelled_at", "past_due_since", "stripe_state_at", "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = (
        "status", "stripe_customer_id", "stripe_subscription_id", "current_period_start",
        "current_period_end", "cancelled_at", "past_due_since", "stripe_state_at",
        "created_at", "updated_at",
    )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("user_id", *self.readonly_fields) if obj else self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: UserSubscription, form: Any, change: bool
    ) -> None:
        actor = f"staff:{request.user.get_username()}"
        if not change:
            obj.save()
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


@admin.register(BillingEvent)
class BillingEventAdmin(CompactTextAdmin):
    """The ledger: read-only, newest first."""

    list_display = ("created_at", "user_id", "event_type", "amount", "currency", "invoice_id")
    list_filter = ("event_type",)
    search_fields = ("=user_id", "=invoice_id", "=subscription__stripe_customer_id")
    list_select_related = ("subscription",)
    raw_id_fields = ("subscription",)
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
