import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agent_counts_for_owner
from billing import selectors
from billing.models import BillingEvent, SubscriptionPlan
from core.pagination import NewestFirstCursorPagination
from core.permissions import IsOwner
from core.principals import Owner, owner_of
from invoicing import selectors as invoicing_selectors
from invoicing import services
from invoicing.api.serializers import (
    BillingEventSerializer,
    CheckoutRequestSerializer,
    PlanSerializer,
    SubscriptionSerializer,
    UrlSerializer,
)
from teams.accounts import account_id_for
from teams.roles import Role

UNAVAILABLE = {
    502: OpenApiResponse(description="billing_provider_error: Stripe refused the request"),
    503: OpenApiResponse(description="billing_unavailable: Stripe unreachable or unconfigured"),
}


def _owner(request: Request) -> Owner:
    owner = owner_of(request.user)
    assert owner is not None  # IsOwner
    return owner


# Reading a team's plan is for its members; paying and the billing history for its admins.
TEAM_PARAMETER = OpenApiParameter(
    "team",
    str,
    description="A Stack Auth team you are a member of: its account instead of yours "
    "(reading the subscription needs any role; checkout, the portal and billing events "
    "need the team's admin role).",
)


def _account_id(request: Request, *, needs: Role) -> str:
    """The account the request is about: the caller's own, or with `?team=` that team's."""
    team_id = request.query_params.get("team")
    return account_id_for(user_id=_owner(request).id, team_id=team_id, needs=needs)


class PlanListView(generics.ListAPIView[SubscriptionPlan]):
    """Active plans with their prices and limits; public."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]
    serializer_class = PlanSerializer
    pagination_class = None
    queryset = SubscriptionPlan.objects.filter(is_active=True).order_by("price_monthly", "id")

    @extend_schema(summary="List the plans")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SubscriptionView(APIView):
    """The owner's plan, status, period, limits, agent counts and this month's usage."""

    permission_classes = [IsOwner]

    @extend_schema(
        summary="Your subscription, or a team's",
        parameters=[TEAM_PARAMETER],
        responses=SubscriptionSerializer,
    )
    def get(self, request: Request) -> Response:
        account_id = _account_id(request, needs=Role.VIEWER)
        overview = invoicing_selectors.subscription_overview(
            account_id, agent_counts_for_owner(account_id)
        )
        return Response(SubscriptionSerializer(overview).data)


class CheckoutView(APIView):
    """Start a Stripe Checkout for a plan; creates or reuses the owner's Stripe customer."""

    permission_classes = [IsOwner]

    @extend_schema(
        summary="Start a Stripe Checkout",
        request=CheckoutRequestSerializer,
        responses={200: UrlSerializer, **UNAVAILABLE},
        parameters=[
            TEAM_PARAMETER,
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Optional: a retry with the same key returns the same session.",
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        owner = _owner(request)
        account_id = _account_id(request, needs=Role.ADMIN)
        body = CheckoutRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        request_key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
        url = services.billing_checkout_create(
            user_id=account_id,
            email=owner.email,
            plan_id=body.validated_data["plan"].id,
            interval=body.validated_data["interval"],
            request_key=request_key[:100],
        )
        return Response({"url": url})


class PortalView(APIView):
    """A Stripe customer-portal session for the owner."""

    permission_classes = [IsOwner]

    @extend_schema(
        summary="Open the Stripe customer portal",
        request=None,
        parameters=[TEAM_PARAMETER],
        responses={200: UrlSerializer, 409: OpenApiResponse(description="no_billing_account"),
                   **UNAVAILABLE},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        account_id = _account_id(request, needs=Role.ADMIN)
        return Response({"url": services.billing_portal_create(user_id=account_id)})


class BillingEventListView(generics.ListAPIView[BillingEvent]):
    """The owner's billing events, newest first."""

    permission_classes = [IsOwner]
    serializer_class = BillingEventSerializer
    pagination_class = NewestFirstCursorPagination
    queryset = BillingEvent.objects.none()  # for the schema; get_queryset scopes to the owner

    def get_queryset(self) -> Any:
        return selectors.billing_events_for_user(_account_id(self.request, needs=Role.ADMIN))

    @extend_schema(summary="Your billing events, or a team's", parameters=[TEAM_PARAMETER])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
