"""Teams (the Stack Auth mirror) in the support console.

A team's page shows its current members with their Stack Auth permissions and the role
those give, its agents, its templates, and its subscription (a `user_subscriptions` row
keyed by the team's id, see docs/teams.md). Read-only: Stack Auth owns teams, its webhooks
feed the mirror.
"""

from typing import Any

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import Exact
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from agent_templates.selectors import templates_of_owner
from agents.selectors import agent_count_column, agent_counts_for_owner, agents_of_owner
from billing.selectors import subscription_of_user, user_plan_id_column
from console.admin_base import ExactIdSearchAdmin, PanelsAdmin, ReadOnlyAdmin
from invoicing.selectors import subscription_overview
from teams.models import Team, TeamMembership
from teams.selectors import team_members

TEAM_PAGE_AGENTS = 50
TEAM_PAGE_TEMPLATES = 50
TEAM_PAGE_MEMBERS = 500


def team_panels(team: Team) -> dict[str, Any]:
    """What a team's page shows below the mirror's own fields."""
    counts = agent_counts_for_owner(team.pk)
    subscription = subscription_of_user(team.pk)
    agents = agents_of_owner(team.pk)
    members = team_members(team.pk, limit=TEAM_PAGE_MEMBERS + 1)  # one more: cut short?
    templates = templates_of_owner(team.pk).order_by("-created_at", "-id")
    return {
        "overview": subscription_overview(team.pk, counts),
        "subscription": subscription,
        "subscription_url": (
            reverse("admin:billing_usersubscription_change", args=(subscription.pk,))
            if subscription is not None
            else None
        ),
        "members": members[:TEAM_PAGE_MEMBERS],
        "members_truncated": len(members) > TEAM_PAGE_MEMBERS,
        "member_limit": TEAM_PAGE_MEMBERS,
        "agents": list(agents[:TEAM_PAGE_AGENTS]),
        "agent_total": agents.count(),
        "agents_url": reverse("admin:agents_a1agent_changelist") + "?" + urlencode({"q": team.pk}),
        "page_limit": TEAM_PAGE_AGENTS,
        "templates": list(templates[:TEAM_PAGE_TEMPLATES]),
        "template_total": templates.count(),
        "templates_url": reverse("admin:agent_templates_agenttemplate_changelist")
        + "?"
        + urlencode({"q": team.pk}),
        "template_limit": TEAM_PAGE_TEMPLATES,
    }


def _member_count_column() -> Coalesce:
    counts = (
        TeamMembership.objects.filter(team_id=OuterRef("pk"), is_member=True)
        .order_by()
        .values("team_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin, ExactIdSearchAdmin, PanelsAdmin):
    """The team mirror, read-only: Stack Auth owns teams; its webhooks feed it."""

    staff_resource = "team"

    change_form_template = "admin/teams/team/change_form.html"
    list_display = ("id", "display_name", "plan", "members", "agents", "deleted_at")
    list_filter = (("deleted_at", admin.EmptyFieldListFilter),)
    search_fields = ("=id", "=display_name")
    search_help_text = "Exact team id, or the team's name (any case)."
    ordering = ("id",)
    readonly_fields = (
        "id", "display_name", "profile_image_url", "first_seen_at", "updated_at",
        "deleted_at", "last_event_at", "last_event_id",
    )  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                owner_plan=user_plan_id_column("pk"),
                member_count=_member_count_column(),
                agent_count=agent_count_column("pk"),
            )
        )

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        """Find a team by exact id, or by name in any case through the lower(name) index."""
        return queryset.filter(Q(pk=term) | Exact(Lower("display_name"), term.lower()))

    @admin.display(description="plan")
    def plan(self, team: Team) -> str:
        return str(getattr(team, "owner_plan", ""))

    @admin.display(description="members")
    def members(self, team: Team) -> int:
        return int(getattr(team, "member_count", 0))

    @admin.display(description="agents (not archived)")
    def agents(self, team: Team) -> int:
        return int(getattr(team, "agent_count", 0))

    def change_panels(self, request: HttpRequest, obj: Team) -> dict[str, Any]:
        return {"team_page": team_panels(obj)}
