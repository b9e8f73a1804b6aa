from typing import Any

from rest_framework import serializers

from billing.models import BillingEvent, SubscriptionPlan
from billing.selectors import plan_total_limit
from core.api_input import StrictFieldsMixin


class PlanSerializer(serializers.ModelSerializer[SubscriptionPlan]):
    max_total_agents = serializers.SerializerMethodField()
    stripe_lookup_keys = serializers.SerializerMethodField()

    class Meta:
        model = SubscriptionPlan
        fields = (
            "id", "name", "description", "price_monthly", "price_yearly", "currency",
            "max_personal_agents", "max_work_agents", "max_total_agents",
            "max_messages_per_month", "messages_hard_cap", "overage_price_per_message",
            "max_storage_gb", "features", "owner_requests_per_minute", "app_requests_per_minute",
            "past_due_grace_days", "stripe_lookup_keys",
        )  # fmt: skip
        read_only_fields = fields

    def get_max_total_agents(self, plan: SubscriptionPlan) -> int:
        return plan_total_limit(plan)

    def get_stripe_lookup_keys(self, plan: SubscriptionPlan) -> dict[str, str]:
        return {interval: plan.stripe_lookup_key(interval) for interval in ("month", "year")}


class AgentCountsSerializer(serializers.Serializer[Any]):
    personal = serializers.IntegerField()
    work = serializers.IntegerField()
    total = serializers.IntegerField()


class PeriodUsageSerializer(serializers.Serializer[Any]):
    month = serializers.CharField()
    messages_used = serializers.IntegerField()
    included_messages = serializers.IntegerField(allow_null=True)
    hard_cap = serializers.BooleanField()


class SubscriptionSerializer(serializers.Serializer[Any]):
    plan = PlanSerializer()
    status = serializers.CharField()
    current_period_start = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When the subscription was cancelled (asked for); null while it renews.",
    )
    ends_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When a cancelled subscription stops (or stopped) being paid for. One "
        "cancelled at period end keeps its status and plan until then; null while it renews.",
    )
    past_due_since = serializers.DateTimeField(allow_null=True)
    grace_ends_at = serializers.DateTimeField(
        allow_null=True, help_text="When a past_due subscription's apps start being refused."
    )
    limits = AgentCountsSerializer(help_text="Effective limits; -1 means unlimited.")
    agents = AgentCountsSerializer(help_text="Agents that are not archived.")
    over_limit = serializers.BooleanField(
        help_text="More agents than the limits allow (after a downgrade): none can be added."
    )
    over_limits = serializers.ListField(child=serializers.CharField())
    usage = PeriodUsageSerializer()
    has_billing_account = serializers.BooleanField()


class CheckoutRequestSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    plan = serializers.SlugRelatedField(
        slug_field="id",
        queryset=SubscriptionPlan.objects.filter(is_active=True).exclude(id="free"),
        help_text="pro or enterprise",
    )
    interval = serializers.ChoiceField(choices=["month", "year"], default="month")


class UrlSerializer(serializers.Serializer[Any]):
    url = serializers.URLField()


class BillingEventSerializer(serializers.ModelSerializer[BillingEvent]):
    class Meta:
        model = BillingEvent
        fields = ("id", "event_type", "amount", "currency", "description", "invoice_id",
                  "created_at")  # fmt: skip
        read_only_fields = fields
