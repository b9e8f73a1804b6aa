from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agent_queryset_for
from core.months import current_month
from core.permissions import IsApp, IsOwner, IsOwnerOrStaff
from core.principals import app_of, owner_of
from teams.accounts import account_id_for
from teams.roles import Role
from usage import selectors, services
from usage.api.serializers import (
    AgentUsageResponseSerializer,
    DailyUsageSerializer,
    IngestResultSerializer,
    MonthSerializer,
    UsageBatchSerializer,
    UsageRangeSerializer,
    UsageSummarySerializer,
)
from usage.event_input import parse_batch


class UsageEventsView(APIView):
    """An app reports its agent's usage: one event, or `{"events": [...]}` of up to 1000."""

    permission_classes = [IsApp]

    @extend_schema(
        summary="Report usage events",
        request=UsageBatchSerializer,
        responses={
            202: IngestResultSerializer,
            409: OpenApiResponse(description="agent_not_active: the agent is paused or archived"),
            429: OpenApiResponse(description="quota_exceeded or throttled"),
        },
        description='A single event object is also accepted in place of `{"events": [...]}`. '
        "The batch is all or nothing: one invalid event answers 400 naming it by position.",
    )
    def post(self, request: Request) -> Response:
        app = app_of(request.user)
        assert app is not None  # IsApp
        events = parse_batch(request.data, timezone.now())
        result = services.usage_ingest(agent_id=app.agent_id, events=events)
        body = {"accepted": result.accepted, "duplicates": result.duplicates}
        return Response(IngestResultSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class AgentUsageView(APIView):
    """An agent's daily usage rows; another owner's agent is 404."""

    permission_classes = [IsOwnerOrStaff]
    staff_resource = "usage"

    @extend_schema(
        summary="Daily usage of an agent",
        parameters=[
            OpenApiParameter("start", str, description="YYYY-MM-DD; default 29 days before end"),
            OpenApiParameter("end", str, description="YYYY-MM-DD; default today (UTC)"),
        ],
        responses=AgentUsageResponseSerializer,
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = get_object_or_404(agent_queryset_for(request.user), pk=agent_id)
        bounds = UsageRangeSerializer(data=request.query_params.dict())
        bounds.is_valid(raise_exception=True)
        start, end = bounds.validated_data["start"], bounds.validated_data["end"]
        days = selectors.usage_days_for_agent(agent.pk, start=start, end=end)
        return Response(
            {
                "agent": agent.pk,
                "start": start,
                "end": end,
                "days": DailyUsageSerializer(days, many=True).data,
            }
        )


class UsageSummaryView(APIView):
    """The owner's month, or a team's: per-agent totals, quota use and projected overage."""

    permission_classes = [IsOwner]

    @extend_schema(
        summary="Monthly usage summary",
        parameters=[
            OpenApiParameter("month", str, description="YYYY-MM; default this month"),
            OpenApiParameter(
                "team", str, description="A team you are a member of: its month instead of yours"
            ),
        ],
        responses=UsageSummarySerializer,
    )
    def get(self, request: Request) -> Response:
        owner = owner_of(request.user)
        assert owner is not None  # IsOwner
        params = request.query_params.dict()
        account_id = account_id_for(
            user_id=owner.id, team_id=params.pop("team", None), needs=Role.VIEWER
        )
        query = MonthSerializer(data=params)
        query.is_valid(raise_exception=True)
        month = query.validated_data.get("month") or current_month()
        # A team's agents are listed as the caller may see them; their own are all theirs.
        summary = selectors.usage_month_summary(account_id, month, viewer_id=owner.id)
        return Response(UsageSummarySerializer(summary).data)
