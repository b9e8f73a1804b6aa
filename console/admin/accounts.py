"""Users (the Stack Auth mirror) in the support console.

The list shows each user's plan, subscription status and agent count from subqueries (one
query per page). A user's page gathers their subscription and effective limits, whether they
are over them, this month's usage, their agents, billing events and audit trail, with a link
to the subscription's page, where staff with the admin role change the plan or override the
limits (through the billing services, recorded).
"""

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import StackUser
from accounts.selectors import email_is
from agents.selectors import agent_count_column, agent_counts_for_owner, agents_of_owner
from audit.selectors import audit_entries_for_owner
from billing.selectors import (
    billing_events_for_user,
    subscription_of_user,
    user_plan_id_column,
    user_subscription_status_column,
)
from console.admin_base import ExactIdSearchAdmin, PanelsAdmin, ReadOnlyAdmin
from invoicing.selectors import subscription_overview

USER_PAGE_AGENTS = 50
USER_PAGE_EVENTS = 20
USER_PAGE_AUDIT = 30


def user_panels(user: StackUser) -> dict[str, Any]:
    """What a user's page shows below the mirror's own fields."""
    counts = agent_counts_for_owner(user.pk)
    overview = subscription_overview(user.pk, counts)
    subscription = subscription_of_user(user.pk)
    if subscription is not None:
        subscription_url = reverse("admin:billing_usersubscription_change", args=(subscription.pk,))
    else:
        subscription_url = (
            reverse("admin:billing_usersubscription_add") + "?" + urlencode({"user_id": user.pk})
        )
    agents = agents_of_owner(user.pk)
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
class StackUserAdmin(ReadOnlyAdmin, ExactIdSearchAdmin, PanelsAdmin):
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
        return (
            super()
            .get_queryset(request)
            .annotate(
                owner_plan=user_plan_id_column("pk"),
                subscription_state=user_subscription_status_column("pk"),
                agent_count=agent_count_column("pk"),
            )
        )

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        """Find a user by exact id or by email in any case, using the two indexes."""
        return queryset.filter(Q(pk=term) | email_is(term))

    @admin.display(description="plan")
    def plan(self, user: StackUser) -> str:
        return str(getattr(user, "owner_plan", ""))

    @admin.display(description="subscription")
    def subscription_status(self, user: StackUser) -> str:
        return str(getattr(user, "subscription_state", None) or "—")

    @admin.display(description="agents (not archived)")
    def agents(self, user: StackUser) -> int:
        return int(getattr(user, "agent_count", 0))

    def change_panels(self, request: HttpRequest, obj: StackUser) -> dict[str, Any]:
        return {"user_page": user_panels(obj)}
