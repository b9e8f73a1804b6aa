import datetime as dt
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from core.api_input import StrictFieldsMixin
from core.months import MONTH_RE, InvalidMonth, parse_month
from usage.event_input import (
    MAX_COUNTER,
    MAX_EVENTS_PER_BATCH,
    MAX_ID_LENGTH,
    MAX_STORAGE_BYTES,
)
from usage.models import AgentUsage


class UsageEventSerializer(serializers.Serializer[Any]):
    """One usage event. Documents the schema; `usage.event_input` validates on the hot path."""

    id = serializers.CharField(
        max_length=MAX_ID_LENGTH,
        help_text="Your idempotency key: an id repeated for this agent counts once.",
    )
    timestamp = serializers.DateTimeField(
        required=False,
        help_text="When it happened (ISO 8601); default now. Not older than 35 days, "
        "not more than 5 minutes ahead.",
    )
    messages = serializers.IntegerField(min_value=0, max_value=MAX_COUNTER, default=0)
    api_calls = serializers.IntegerField(min_value=0, max_value=MAX_COUNTER, default=0)
    compute_seconds = serializers.IntegerField(min_value=0, max_value=MAX_COUNTER, default=0)
    storage_bytes = serializers.IntegerField(
        min_value=0,
        max_value=MAX_STORAGE_BYTES,
        required=False,
        help_text="A gauge: the day keeps the most recently measured value.",
    )


class UsageBatchSerializer(serializers.Serializer[Any]):
    """A batch of events (a single event object is accepted too)."""

    events = serializers.ListField(
        child=UsageEventSerializer(), min_length=1, max_length=MAX_EVENTS_PER_BATCH
    )


class IngestResultSerializer(serializers.Serializer[Any]):
    accepted = serializers.IntegerField(help_text="Events counted now.")
    duplicates = serializers.IntegerField(help_text="Events whose id was already counted.")


class DailyUsageSerializer(serializers.ModelSerializer[AgentUsage]):
    class Meta:
        model = AgentUsage
        fields = (
            "date", "message_count", "api_calls", "compute_seconds", "storage_bytes",
            "estimated_cost",
        )  # fmt: skip
        read_only_fields = fields


class UsageRangeSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)

    MAX_DAYS = 366

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today = timezone.now().date()
        end = attrs.get("end") or today
        start = attrs.get("start") or end - dt.timedelta(days=29)
        if start > end:
            raise serializers.ValidationError({"start": ["Must not be after end."]})
        if (end - start).days + 1 > self.MAX_DAYS:
            raise serializers.ValidationError({"start": [f"At most {self.MAX_DAYS} days at once."]})
        return {"start": start, "end": end}


class AgentUsageResponseSerializer(serializers.Serializer[Any]):
    agent = serializers.UUIDField()
    start = serializers.DateField()
    end = serializers.DateField()
    days = DailyUsageSerializer(many=True)


class MonthSerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    month = serializers.RegexField(
        MONTH_RE.pattern, required=False, help_text="YYYY-MM; default this month."
    )

    def validate_month(self, value: str) -> dt.date:
        try:
            return parse_month(value)
        except InvalidMonth as error:
            raise serializers.ValidationError(str(error)) from None


class MonthTotalsSerializer(serializers.Serializer[Any]):
    messages = serializers.IntegerField()
    api_calls = serializers.IntegerField()
    compute_seconds = serializers.IntegerField()
    storage_bytes = serializers.IntegerField(help_text="The month's highest daily gauge.")
    estimated_cost = serializers.DecimalField(max_digits=14, decimal_places=4)


class AgentMonthTotalsSerializer(MonthTotalsSerializer):
    agent = serializers.UUIDField()
    handle = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField(allow_null=True)


class UsageSummarySerializer(serializers.Serializer[Any]):
    month = serializers.CharField()
    plan = serializers.CharField()
    agents = AgentMonthTotalsSerializer(many=True)
    totals = MonthTotalsSerializer(
        help_text="Sums over the agents listed (deleted agents' usage is gone with them)."
    )
    included_messages = serializers.IntegerField(allow_null=True)
    messages_used = serializers.IntegerField(
        help_text="The month's messages counted toward the quota, across all agents ever."
    )
    quota_used_percent = serializers.FloatField(allow_null=True)
    hard_cap = serializers.BooleanField()
    projected_messages = serializers.IntegerField()
    projected_overage_messages = serializers.IntegerField()
    projected_overage_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
