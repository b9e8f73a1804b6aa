from django.contrib import admin

from a1zap.admin_widgets import CompactTextAdmin
from billing.models import BillingEvent, SubscriptionPlan, UserSubscription


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(CompactTextAdmin):
    list_display = (
        "id",
        "name",
        "price_monthly",
        "price_yearly",
        "max_personal_agents",
        "max_work_agents",
        "max_messages_per_month",
        "is_active",
    )
    list_filter = ("is_active",)


@admin.register(UserSubscription)
class UserSubscriptionAdmin(CompactTextAdmin):
    list_display = ("user_id", "plan_id", "status", "current_period_end", "updated_at")
    list_filter = ("plan_id", "status")
    search_fields = ("=user_id", "=stripe_customer_id", "=stripe_subscription_id")
    readonly_fields = ("id", "created_at", "updated_at")


@admin.register(BillingEvent)
class BillingEventAdmin(CompactTextAdmin):
    list_display = ("created_at", "user_id", "event_type", "amount", "currency", "invoice_id")
    list_filter = ("event_type",)
    search_fields = ("=user_id", "=invoice_id")
    raw_id_fields = ("subscription",)
    readonly_fields = ("id", "created_at")
    ordering = ("-created_at",)
