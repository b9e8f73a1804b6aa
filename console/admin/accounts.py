"""Users (the Stack Auth mirror) in the support console.

The list shows each user's plan, subscription status and agent count from subqueries (one
query per page). A user's page gathers their subscription and effective limits, whether they
are over them, this month's usage, their agents, billing events and audit trail, with a link
to the subscription's page, where staff with the admin role change the plan or override the
limits (through the billing services, recorded).
"""

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import (
    Count,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Coalesce, Lower
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import StackUser
from agents.models import A1Agent, AgentStatus
from agents.selectors import agent_counts_for_owner
from audit.selectors import audit_entries_for_owner
from billing.models import PlanId, UserSubscription
from billing.selectors import billing_events_for_user
from console.admin_base import LargeTableAdmin, StaffPermissionsAdmin
from invoicing.selectors import subscription_overview

USER_PAGE_AGENTS = 50
USER_PAGE_EVENTS = 20
USER_PAGE_AUDIT = 30


def user_panels(user: StackUser) -> dict[str, Any]:
    """What a user's page shows below the mirror's own fields."""
    counts = agent_counts_for_owner(user.pk)
    overview = subscription_overview(user.pk, counts)
    subscription = UserSubscription.objects.filter(user_id=user.pk).first()
    if subscription is not None:
        subscription_url = reverse("admin:billing_usersubscription_change", args=(subscription.pk,))
    else:
        subscription_url = (
            reverse("admin:billing_usersubscription_add") + "?" + urlencode({"user_id": user.pk})
        )
    agents = A1Agent.objects.filter(owner_id=user.pk).order_by("-created_at")
    return {
        "overview": overview,
        "subscription": subscription,
        "subscription_url": subscription_url,
        "agents": list(agents[:USER_PAGE_AGENTS]),
        "agent_total": agents.count(),
        "agents_url": reverse("admin:agents_a1agent_changelist") + "?" + urlencode({"q": user.pk}),
        "billing_events": list(billing_events_for_user(user.pk)[:USER_PAGE_EVENTS]),
        "billing_events_url": reverse("admin:billing_billingevent_changelist")
        + "?"
        + urlencode({"q": user.pk}),
        "audit_entries": list(audit_entries_for_owner(user.pk)[:USER_PAGE_AUDIT]),
        "audit_url": reverse("admin:audit_auditentry_changelist") + "?" + urlencode({"q": user.pk}),
        "page_limit": USER_PAGE_AGENTS,
    }


@admin.register(StackUser)
class StackUserAdmin(StaffPermissionsAdmin, LargeTableAdmin):
    """The user mirror, read-only: Stack Auth owns users; tokens and webhooks feed it."""

    staff_resource = "stack_user"

    change_form_template = "admin/accounts/stackuser/change_form.html"
    list_display = (
        "id", "email", "display_name", "plan", "subscription_status", "agents",
        "last_seen_at", "deleted_at",
    )  # fmt: skip
    list_filter = (("deleted_at", admin.EmptyFieldListFilter),)
    search_fields = ("=id", "=email")
    search_help_text = "Exact user id or email address (any case)."
    ordering = ("id",)  # the primary key's index (last_seen_at has none)
    readonly_fields = (
        "id",
        "email",
        "display_name",
        "first_seen_at",
        "last_seen_at",
        "deleted_at",
        "updated_at",
        "last_event_at",
        "last_event_id",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[StackUser]:
        subscription = UserSubscription.objects.filter(user_id=OuterRef("pk"))
        agents = (
            A1Agent.objects.filter(owner_id=OuterRef("pk"))
            .exclude(status=AgentStatus.ARCHIVED)
            .order_by()
            .values("owner_id")
            .annotate(count=Count("id"))
            .values("count")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                owner_plan=Coalesce(
                    Subquery(subscription.values("plan_id")[:1]),
                    Value(PlanId.FREE),
                    output_field=TextField(),
                ),
                subscription_state=Subquery(subscription.values("status")[:1]),
                agent_count=Coalesce(Subquery(agents, output_field=IntegerField()), 0),
            )
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """Find a user by exact id or by email in any case, using the two indexes."""
        term = search_term.strip()
        if not term:
            return queryset, False
        # Django's `=email` would compare UPPER(email), which the lower(email) index cannot serve.
        matches = queryset.alias(email_lower=Lower("email")).filter(
            Q(pk=term) | Q(email_lower=term.lower())
        )
        return matches, False

    @admin.display(description="plan")
    def plan(self, user: StackUser) -> str:
        return str(getattr(user, "owner_plan", ""))

    @admin.display(description="subscription")
    def subscription_status(self, user: StackUser) -> str:
        return str(getattr(user, "subscription_state", None) or "—")

    @admin.display(description="agents (not archived)")
    def agents(self, user: StackUser) -> int:
        return int(getattr(user, "agent_count", 0))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        user = self.get_object(request, unquote(object_id))
        if user is not None:
            context["user_page"] = user_panels(user)
        return super().change_view(request, object_id, form_url, context)
