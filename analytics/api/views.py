"""The analytics API: an agent's metrics per period, and the owner's summary across agents.

Both read the rollup only (analytics.selectors). The agent route names its agent through
`visible_agent_id` like every agent route (another owner's agent is 404). Either answers
JSON, or CSV with `?format=csv` or `Accept: text/csv` (one row per period, or per agent).
"""

import csv
import io
from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api.visibility import visible_agent_id
from agents.selectors import agent_queryset_for, of_team
from analytics.api.serializers import (
    AgentAnalyticsSerializer,
    AnalyticsQuerySerializer,
    AnalyticsSummaryQuerySerializer,
    AnalyticsSummarySerializer,
)
from analytics.selectors import analytics_report
from conversations.models import Channel
from core.permissions import IsOwner, IsOwnerOrStaff
from core.principals import owner_of

# A spreadsheet runs a cell that starts with one of these as a formula.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def flat_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """One CSV row's metric columns."""
    usage = metrics.get("usage") or {}
    return {
        "conversations_started": metrics["conversations_started"],
        "conversations_without_reply": metrics["conversations_without_reply"],
        "active_conversations": metrics["active_conversations"],
        "end_users": metrics["end_users"],
        **{f"messages_{role}": count for role, count in metrics["messages"].items()},
        "responses": metrics["response_time"]["count"],
        "response_p50_seconds": metrics["response_time"]["p50_seconds"],
        "response_p95_seconds": metrics["response_time"]["p95_seconds"],
        "first_responses": metrics["first_response_time"]["count"],
        "first_response_p50_seconds": metrics["first_response_time"]["p50_seconds"],
        "first_response_p95_seconds": metrics["first_response_time"]["p95_seconds"],
        "usage_message_count": usage.get("message_count"),
        "usage_api_calls": usage.get("api_calls"),
        "usage_compute_seconds": usage.get("compute_seconds"),
        "usage_estimated_cost": usage.get("estimated_cost"),
    }


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value


class AnalyticsCSVRenderer(BaseRenderer):
    """The rows of an analytics answer (its periods, or its agents) as CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if not isinstance(data, dict) or not ({"periods", "agents"} & set(data)):
            return JSONRenderer().render(data)  # not a report (the view answers JSON then)
        # The header comes from the totals (the same metrics), so a report without rows is
        # still a CSV file: an empty body would go out with no Content-Type at all.
        if "periods" in data:
            key_columns = ["period_start", "period_end"]
            rows = [
                {"period_start": p["period_start"], "period_end": p["period_end"],
                 **flat_metrics(p)}
                for p in data["periods"]
            ]  # fmt: skip
        else:
            key_columns = ["agent", "handle", "name"]
            rows = [
                {"agent": a["agent"], "handle": a["handle"], "name": a["name"], **flat_metrics(a)}
                for a in data["agents"]
            ]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*key_columns, *flat_metrics(data["totals"])])
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(value) for key, value in row.items()})
        return buffer.getvalue().encode("utf-8")


class AnalyticsView(APIView):
    """Errors, and anything but a GET's report (OPTIONS), answer JSON whatever format was
    asked for."""

    renderer_classes = [JSONRenderer, AnalyticsCSVRenderer]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response) and (
            response.status_code >= 400 or request.method != "GET"
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code < 400 and getattr(request, "accepted_media_type", "") == (
            "text/csv"
        ):
            response["Content-Disposition"] = f'attachment; filename="{self.csv_name}.csv"'
        return response

    csv_name = "analytics"

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # An unknown ?format= is a 400 from the query's serializer, not DRF's 404.
        return super().perform_content_negotiation(request, force=True)


QUERY_PARAMETERS = [
    OpenApiParameter(
        "start", OpenApiTypes.DATE, description="UTC day; default 29 days before end."
    ),
    OpenApiParameter("end", OpenApiTypes.DATE, description="UTC day, inclusive; default today."),
    OpenApiParameter("channel", str, enum=Channel.values, description="Only this channel."),
    OpenApiParameter(
        "tz", str, description="Periods are UTC days; only UTC is accepted (400 otherwise)."
    ),
    OpenApiParameter("format", str, enum=["json", "csv"], description="Or `Accept: text/csv`."),
]
CSV_RESPONSE = OpenApiResponse(OpenApiTypes.STR, description="A header row, then one row each.")


class AgentAnalyticsView(AnalyticsView):
    """An agent's metrics per day, week or month (owner, staff)."""

    permission_classes = [IsOwnerOrStaff]
    staff_resource = "usage"

    @extend_schema(
        summary="Analytics of an agent, per day, week or month",
        description="Read from the daily rollup (see the README's Analytics section for every "
        "metric's definition). Weeks start on Monday; the first and last period are cut to "
        "[start, end]. At most 400 days at once.",
        parameters=[
            *QUERY_PARAMETERS,
            OpenApiParameter("granularity", str, enum=["day", "week", "month"]),
        ],
        responses={
            (200, "application/json"): AgentAnalyticsSerializer,
            (200, "text/csv"): CSV_RESPONSE,
        },
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = visible_agent_id(request.user, agent_id)
        query = AnalyticsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        fields = query.validated_data
        report = analytics_report(
            agent_ids=[agent],
            start=fields["start"],
            end=fields["end"],
            granularity=fields["granularity"],
            channel=fields["channel"],
        )
        self.csv_name = f"agent-{agent}-analytics"
        body = {
            "agent": agent,
            "start": fields["start"],
            "end": fields["end"],
            "granularity": fields["granularity"],
            "channel": fields["channel"],
            "timezone": "UTC",
            "totals": report.totals,
            "periods": report.periods,
        }
        return Response(AgentAnalyticsSerializer(body).data)


class AnalyticsSummaryView(AnalyticsView):
    """The owner's metrics over a range, per agent and across all of them."""

    permission_classes = [IsOwner]
    csv_name = "analytics-summary"

    @extend_schema(
        summary="Analytics summary across the owner's agents",
        description="One total per agent over [start, end] and one across agents; end users "
        "of different agents are different end users.",
        parameters=[
            *QUERY_PARAMETERS,
            OpenApiParameter(
                "team",
                str,
                description="Only this team's agents (a team id), or `none` for only your own.",
            ),
        ],
        responses={
            (200, "application/json"): AnalyticsSummarySerializer,
            (200, "text/csv"): CSV_RESPONSE,
        },
    )
    def get(self, request: Request) -> Response:
        owner = owner_of(request.user)
        assert owner is not None  # IsOwner
        query = AnalyticsSummaryQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        fields = query.validated_data
        visible = of_team(agent_queryset_for(request.user), fields.get("team"))
        agents = list(visible.order_by("handle", "id").values_list("id", "name", "handle"))
        report = analytics_report(
            agent_ids=[agent_id for agent_id, _, _ in agents],
            start=fields["start"],
            end=fields["end"],
            channel=fields["channel"],
            per_period=False,
        )
        body = {
            "start": fields["start"],
            "end": fields["end"],
            "channel": fields["channel"],
            "timezone": "UTC",
            "totals": report.totals,
            "agents": [
                {"agent": agent_id, "name": name, "handle": handle, **report.agents[agent_id]}
                for agent_id, name, handle in agents
            ],
        }
        return Response(AnalyticsSummarySerializer(body).data)
