"""Input and output shapes of the analytics API."""

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone
from rest_framework import serializers

from analytics.selectors import GRANULARITIES
from conversations.models import Channel
from core.api_input import StrictFieldsMixin

MAX_DAYS = 400
DEFAULT_DAYS = 30


class AnalyticsQuerySerializer(StrictFieldsMixin, serializers.Serializer[Any]):
    start = serializers.DateField(
        required=False, help_text="YYYY-MM-DD (UTC day); default 29 days before end."
    )
    end = serializers.DateField(
        required=False, help_text="YYYY-MM-DD (UTC day), inclusive; default today (UTC)."
    )
    granularity = serializers.ChoiceField(choices=GRANULARITIES, default="day")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    tz = serializers.CharField(
        required=False,
        default="UTC",
        help_text="Days are UTC days; only UTC (or an alias of it, such as Etc/UTC) is accepted.",
    )
    format = serializers.ChoiceField(choices=["json", "csv"], required=False)

    def validate_tz(self, value: str) -> str:
        try:
            zone = ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError("Not a known IANA time zone.") from None
        moment = dt.datetime(2001, 1, 1, tzinfo=zone)
        summer = dt.datetime(2001, 7, 1, tzinfo=zone)
        if moment.utcoffset() != dt.timedelta(0) or summer.utcoffset() != dt.timedelta(0):
            raise serializers.ValidationError(
                "Analytics are bucketed by UTC day; only UTC is supported."
            )
        return "UTC"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("end") or timezone.now().astimezone(dt.UTC).date()
        start = attrs.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise serializers.ValidationError({"start": ["Must not be after end."]})
        if (end - start).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"start": [f"At most {MAX_DAYS} days at once."]})
        return {**attrs, "start": start, "end": end, "channel": attrs.get("channel")}


class AnalyticsSummaryQuerySerializer(AnalyticsQuerySerializer):
    team = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Only this team's agents (a team id), or `none` for only your own; "
        "default every agent you may see.",
    )


class ResponseTimeSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)


class MessageCountsSerializer(serializers.Serializer[Any]):
    user = serializers.IntegerField()
    agent = serializers.IntegerField()
    system = serializers.IntegerField()
    tool = serializers.IntegerField()
    total = serializers.IntegerField()


class UsageTotalsSerializer(serializers.Serializer[Any]):
    message_count = serializers.IntegerField()
    api_calls = serializers.IntegerField()
    compute_seconds = serializers.IntegerField()
    estimated_cost = serializers.DecimalField(max_digits=14, decimal_places=4)


class MetricsSerializer(serializers.Serializer[Any]):
    conversations_started = serializers.IntegerField()
    conversations_without_reply = serializers.IntegerField()
    active_conversations = serializers.IntegerField()
    end_users = serializers.IntegerField()
    messages = MessageCountsSerializer()
    response_time = ResponseTimeSerializer()
    first_response_time = ResponseTimeSerializer()
    usage = UsageTotalsSerializer(
        allow_null=True, help_text="From agent_usage (per agent and day); null with a channel."
    )


class PeriodSerializer(MetricsSerializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField()


class AgentAnalyticsSerializer(serializers.Serializer[Any]):
    agent = serializers.UUIDField()
    start = serializers.DateField()
    end = serializers.DateField()
    granularity = serializers.CharField()
    channel = serializers.CharField(allow_null=True)
    timezone = serializers.CharField(help_text="Always UTC: periods are made of UTC days.")
    totals = MetricsSerializer()
    periods = PeriodSerializer(many=True)


class AgentTotalsSerializer(MetricsSerializer):
    agent = serializers.UUIDField()
    name = serializers.CharField()
    handle = serializers.CharField()


class AnalyticsSummarySerializer(serializers.Serializer[Any]):
    start = serializers.DateField()
    end = serializers.DateField()
    channel = serializers.CharField(allow_null=True)
    timezone = serializers.CharField()
    totals = MetricsSerializer()
    agents = AgentTotalsSerializer(many=True)
