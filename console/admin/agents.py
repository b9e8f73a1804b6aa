"""The support console's agent pages.

The list finds an agent by handle (any case, through the `lower(handle)` index), owner id,
email (through `email_hash`, never decrypting the table), id or name, and shows each one's
plan and last activity from subqueries (one query per page). The agent page adds what
support needs to answer a customer: the app key prefix, the owner's subscription and
limits, 30 days of usage, recent conversations, integrations (secrets masked) and the
audit trail. Every change goes through `agents.services`, with the staff member as actor.
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import DateTimeField, Q, QuerySet
from django.db.models.functions import Cast, Greatest
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from accounts.selectors import user_ids_with_email
from agents import services
from agents.handles import handle_problem
from agents.models import A1Agent, AgentStatus, App
from agents.selectors import agent_counts_for_owner, agent_reach, handle_is
from analytics.selectors import (
    agents_ranked_by_slowest_response,
    agents_ranked_by_volume,
    analytics_report,
)
from audit.actors import Actor
from audit.selectors import audit_entries_for_agent
from billing.models import PlanId
from billing.selectors import (
    agent_limits_for,
    on_plan,
    plan_id_of,
    subscription_of_user,
    user_plan_id_column,
)
from console.admin_base import (
    ExactIdSearchAdmin,
    LargeTableAdmin,
    PanelsAdmin,
    ReadOnlyAdmin,
    StaffPermissionsAdmin,
    as_uuid,
)
from conversations.selectors import conversations_of_agent, last_message_at_column
from core.encryption import lookup_hash
from core.errors import ServiceError
from integrations.providers import config_masked
from integrations.selectors import integrations_of_agent
from usage.selectors import agent_usage_days, last_usage_day_column

LIST_DEFERRED_FIELDS = (
    "email", "phone_number", "whatsapp_number", "onboarding_data", "settings", "description",
    "app__key_hash",
)  # fmt: skip
USAGE_DAYS = 30
RECENT_CONVERSATIONS = 10
AUDIT_ROWS = 50
CHART_HEIGHT = 80
CHART_BAR_WIDTH = 12
CHART_BAR_STEP = 16

# operation -> (service, past tense); who may is the staff permission map's `agent` entry.
LIFECYCLE: dict[str, tuple[Callable[..., A1Agent], str]] = {
    "pause": (services.agent_pause, "paused"),
    "resume": (services.agent_resume, "resumed"),
    "archive": (services.agent_archive, "archived"),
}


def usage_chart(days: list[tuple[dt.date, int]]) -> dict[str, Any]:
    """Bars of a small SVG chart of messages per day (drawn by the template, no JS)."""
    peak = max((count for _, count in days), default=0)
    bars = []
    for index, (day, count) in enumerate(days):
        height = round(count / peak * CHART_HEIGHT) if peak else 0
        if count and not height:
            height = 1  # a day with traffic is never invisible
        bars.append(
            {
                "x": index * CHART_BAR_STEP,
                "y": CHART_HEIGHT - height,
                "height": height,
                "width": CHART_BAR_WIDTH,
                "day": day,
                "count": count,
            }
        )
    return {
        "bars": bars,
        "peak": peak,
        "width": max(len(days) * CHART_BAR_STEP, CHART_BAR_STEP),
        "height": CHART_HEIGHT,
        "first": days[0][0] if days else None,
        "last": days[-1][0] if days else None,
    }


def _usage_panel(agent: A1Agent) -> dict[str, Any]:
    today = timezone.now().date()
    usage = agent_usage_days(agent.pk, start=today - dt.timedelta(days=USAGE_DAYS - 1), end=today)
    return {
        "chart": usage_chart(usage.messages_per_day),
        "totals": usage,
        "start": usage.start,
        "end": usage.end,
    }


def sparkline(values: list[float | None], width: int = 240, height: int = 32) -> dict[str, Any]:
    """The points of a small SVG line (drawn by the template, no JS); days without a value
    are left out of the line."""
    known = [value for value in values if value is not None]
    peak = max(known, default=0) or 1
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{index * step:.1f},{height - value / peak * height:.1f}"
        for index, value in enumerate(values)
        if value is not None
    )
    return {"points": points, "width": width, "height": height, "peak": max(known, default=0)}


def _analytics_panel(agent: A1Agent) -> dict[str, Any]:
    today = timezone.now().date()
    start = today - dt.timedelta(days=USAGE_DAYS - 1)
    report = analytics_report(agent_ids=[agent.pk], start=start, end=today)
    days = [
        {
            "day": period["period_start"],
            "messages": period["messages"]["total"],
            "end_users": period["end_users"],
            "p50": period["response_time"]["p50_seconds"],
            "p95": period["response_time"]["p95_seconds"],
        }
        for period in report.periods
    ]
    return {
        "start": start,
        "end": today,
        "totals": report.totals,
        "days": [day for day in reversed(days) if day["messages"]],
        "charts": [
            ("Messages per day", sparkline([day["messages"] for day in days])),
            ("End users per day", sparkline([day["end_users"] for day in days])),
            ("Median response time (s)", sparkline([day["p50"] for day in days])),
        ],
        "ranking_url": reverse("admin:agents_a1agent_analytics"),
    }


def _subscription_panel(agent: A1Agent) -> dict[str, Any]:
    subscription = subscription_of_user(agent.owner_id)
    limits = agent_limits_for(subscription)
    counts = agent_counts_for_owner(agent.owner_id)
    if subscription is not None:
        change_url = reverse("admin:billing_usersubscription_change", args=(subscription.pk,))
    else:
        change_url = None
    return {
        "subscription": subscription,
        "plan": plan_id_of(subscription),
        "limits": limits,
        "counts": counts,
        "over_limit": bool(limits.exceeded(counts)),
        "change_url": change_url,
        "owner_url": owner_url(agent),
    }


def owner_url(agent: A1Agent) -> str:
    """The page of the agent's owner: the user's, or the team's for a team's agent."""
    if agent.team_id is not None:
        return reverse("admin:teams_team_change", args=(quote(agent.team_id),))
    return reverse("admin:accounts_stackuser_change", args=(quote(agent.owner_id),))


def support_panels(agent: A1Agent) -> dict[str, Any]:
    """What the agent page shows below the agent's own fields."""
    integrations = [
        {"integration": integration, "settings": sorted(config_masked(integration.config).items())}
        for integration in integrations_of_agent(agent.pk)
    ]
    return {
        "billing": _subscription_panel(agent),
        "usage": _usage_panel(agent),
        "analytics": _analytics_panel(agent),
        "conversations": list(conversations_of_agent(agent.pk)[:RECENT_CONVERSATIONS]),
        "integrations": integrations,
        "audit_entries": list(audit_entries_for_agent(agent.pk)[:AUDIT_ROWS]),
        "audit_url": reverse("admin:audit_auditentry_changelist") + f"?q={agent.pk}",
        "reach": agent_reach(agent),
        "team_url": (
            reverse("admin:teams_team_change", args=(agent.team_id,)) if agent.team_id else None
        ),
    }


class OwnerPlanFilter(admin.SimpleListFilter):
    """The owner's plan; owners without a subscription row are on free."""

    title = "plan"
    parameter_name = "plan"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return PlanId.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(on_plan(value, user_id_field="owner_id"))


class AgentAdminForm(forms.ModelForm):
    class Meta:
        model = A1Agent
        fields = ("owner_id", *sorted(services.UPDATABLE_FIELDS))

    def clean_handle(self) -> str:
        handle: str = self.cleaned_data["handle"]
        if self.instance.pk and not self.instance._state.adding and handle == self.instance.handle:
            return handle
        problem = handle_problem(handle)
        if problem:
            raise ValidationError(problem)
        return handle


@admin.register(A1Agent)
class A1AgentAdmin(StaffPermissionsAdmin, LargeTableAdmin, ExactIdSearchAdmin, PanelsAdmin):
    staff_resource = "agent"
    form = AgentAdminForm
    change_form_template = "admin/agents/a1agent/change_form.html"
    list_display = (
        "name", "at_handle", "owner", "agent_type", "status", "plan", "created_at",
        "last_activity", "key_prefix",
    )  # fmt: skip
    list_filter = ("status", "agent_type", OwnerPlanFilter)
    list_select_related = ("app",)
    search_fields = ("handle",)  # shows the search box; see search_other
    search_help_text = (
        "Exact handle (any case, with or without @), owner id, agent id or email address; "
        "otherwise part of the name."
    )
    # An index serves this order, so the first page costs the same at any table size
    # (newest first would sort the whole table: a1_agents has no index on created_at).
    ordering = ("handle",)
    actions = ("pause_selected", "resume_selected", "archive_selected")
    fieldsets = (
        (None, {"fields": ("id", "owner_id", "name", "handle", "agent_type", "status")}),
        ("Profile", {"fields": ("description", "avatar_url", "base_website", "custom_website")}),
        ("Contact", {"fields": ("email", "phone_number", "whatsapp_number")}),
        ("Data", {"fields": ("onboarding_data", "settings")}),
        ("App", {"fields": ("app_key",)}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("id", "status", "app_key", "created_at", "updated_at")

    # --- list ---------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[A1Agent]:
        agents = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name == "agents_a1agent_changelist":
            # The list shows none of these: leave contact details encrypted, blobs unread.
            agents = agents.defer(*LIST_DEFERRED_FIELDS)
        return agents.annotate(
            owner_plan=user_plan_id_column("owner_id"),
            # PostgreSQL's GREATEST skips NULLs: either kind of activity counts.
            last_activity_at=Greatest(
                last_message_at_column("pk"),
                Cast(last_usage_day_column("pk"), DateTimeField()),
            ),
        )

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        """Exact matches through indexes first; only if none, part of the name."""
        if "@" in term[1:]:
            matches = Q(email_hash=lookup_hash(term)) | Q(owner_id__in=user_ids_with_email(term))
            return queryset.filter(matches)
        exact = handle_is(term.removeprefix("@")) | Q(owner_id=term)
        if (agent_id := as_uuid(term)) is not None:
            exact |= Q(pk=agent_id)
        found = queryset.filter(exact)
        if found.exists():
            return found
        return queryset.filter(name__icontains=term)

    @admin.display(description="handle", ordering="handle")
    def at_handle(self, agent: A1Agent) -> str:
        return f"@{agent.handle}"

    @admin.display(description="owner", ordering="owner_id")
    def owner(self, agent: A1Agent) -> str:
        return format_html('<a href="{}">{}</a>', owner_url(agent), agent.owner_id)

    @admin.display(description="plan")
    def plan(self, agent: A1Agent) -> str:
        return str(getattr(agent, "owner_plan", ""))

    @admin.display(description="last activity")
    def last_activity(self, agent: A1Agent) -> Any:
        return getattr(agent, "last_activity_at", None)

    @admin.display(description="app key")
    def key_prefix(self, agent: A1Agent) -> str:
        return f"{agent.app.key_prefix}…" if agent.app.key_prefix else "—"

    @admin.display(description="app key")
    def app_key(self, agent: A1Agent) -> str:
        # The prefix only: the key is shown once, when made; its hash is never shown.
        app = agent.app
        created = date_format(localtime(app.key_created_at)) if app.key_created_at else "—"
        return format_html(
            "<code>{}…</code> created {} · app {} ({})", app.key_prefix, created, app.pk, app.status
        )

    # --- actions (each calls a service, so plan limits and billing rules hold) -----------

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return self.staff_may(request, "pause")

    def has_resume_permission(self, request: HttpRequest) -> bool:
        return self.staff_may(request, "resume")

    def has_archive_permission(self, request: HttpRequest) -> bool:
        return self.staff_may(request, "archive")

    def _apply(self, request: HttpRequest, agents: QuerySet[A1Agent], operation: str) -> None:
        service, done = LIFECYCLE[operation]
        actor = Actor.staff(request.user)
        changed = 0
        for agent in agents:
            try:
                service(agent=agent, actor=actor)
            except ServiceError as error:
                self.message_user(
                    request, f"@{agent.handle} was not {done}: {error.detail}", messages.ERROR
                )
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} agent(s) {done}.", messages.SUCCESS)

    @admin.action(description="Pause selected agents", permissions=["pause"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[A1Agent]) -> None:
        self._apply(request, queryset, "pause")

    @admin.action(description="Resume selected agents", permissions=["resume"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[A1Agent]) -> None:
        self._apply(request, queryset, "resume")

    @admin.action(description="Archive selected agents", permissions=["archive"])
    def archive_selected(self, request: HttpRequest, queryset: QuerySet[A1Agent]) -> None:
        self._apply(request, queryset, "archive")

    # --- the agent page's buttons --------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        lifecycle = path(
            "<path:object_id>/lifecycle/<str:operation>/",
            self.admin_site.admin_view(self.lifecycle_view),
            name="agents_a1agent_lifecycle",
        )
        ranking = path(
            "analytics/",
            self.admin_site.admin_view(self.analytics_view),
            name="agents_a1agent_analytics",
        )
        return [ranking, lifecycle, *super().get_urls()]

    def analytics_view(self, request: HttpRequest) -> HttpResponse:
        """Rank agents by messages and by slowest 95th percentile response time."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = min(max(int(request.GET.get("days", USAGE_DAYS)), 1), 400)
        except ValueError:
            days = USAGE_DAYS
        end = timezone.now().date()
        start = end - dt.timedelta(days=days - 1)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Agents ranked, {start} to {end} (UTC days)",
            "days": days,
            "by_volume": agents_ranked_by_volume(start=start, end=end),
            "by_slowest": agents_ranked_by_slowest_response(start=start, end=end),
        }
        return TemplateResponse(request, "admin/agents/a1agent/analytics.html", context)

    def lifecycle_view(self, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
        """Pause, resume, archive or rotate the key of one agent (POST from its page)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if operation not in (*LIFECYCLE, "rotate-key"):
            raise Http404("No such operation.")
        if not self.staff_may(request, operation.replace("-", "_")):
            raise PermissionDenied
        agent = self.get_object(request, unquote(object_id))
        if agent is None:
            raise Http404("No such agent.")
        actor = Actor.staff(request.user)
        try:
            if operation == "rotate-key":
                agent, key = services.agent_rotate_key(agent=agent, actor=actor)
                return self.app_key_response(request, agent, key, rotated=True)
            service, done = LIFECYCLE[operation]
            service(agent=agent, actor=actor)
            self.message_user(request, f"@{agent.handle} {done}.", messages.SUCCESS)
        except ServiceError as error:
            self.message_user(request, f"@{agent.handle}: {error.detail}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:agents_a1agent_change", args=(quote(agent.pk),)))

    def app_key_response(
        self, request: HttpRequest, agent: A1Agent, key: str, *, rotated: bool
    ) -> HttpResponse:
        """Show a new app key once, in this response only.

        Never through the messages framework: its default storage is a signed but readable
        cookie, which would carry the key to the browser's disk and back on every request.
        """
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"App key for @{agent.handle}",
            "agent": agent,
            "app_key": key,
            "rotated": rotated,
            "change_url": reverse("admin:agents_a1agent_change", args=(quote(agent.pk),)),
        }
        response = TemplateResponse(request, "admin/agents/a1agent/app_key.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def change_panels(self, request: HttpRequest, obj: A1Agent) -> dict[str, Any]:
        lifecycle = {
            "can_pause": self.staff_may(request, "pause"),
            "can_resume": self.staff_may(request, "resume"),
            "can_archive": self.staff_may(request, "archive"),
            "can_rotate": self.staff_may(request, "rotate_key"),
            "is_active": obj.status == AgentStatus.ACTIVE,
            "is_archived": obj.status == AgentStatus.ARCHIVED,
        }
        return {"support": support_panels(obj), "lifecycle": lifecycle}

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # A rule only the service can check (a plan limit, a handle taken a moment ago)
        # rolls the save back and is shown as a message, not as a server error.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as error:
            self.message_user(request, f"Not saved: {error.detail}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    # --- edits (admin role) go through the services --------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: A1Agent | None = None) -> Any:
        return ("owner_id", *self.readonly_fields) if obj else self.readonly_fields

    def get_fieldsets(self, request: HttpRequest, obj: A1Agent | None = None) -> Any:
        if obj is None:  # a new agent has no app, status or dates yet
            return self.fieldsets[:4]
        return self.fieldsets

    def save_model(self, request: HttpRequest, obj: A1Agent, form: Any, change: bool) -> None:
        actor = Actor.staff(request.user)
        fields = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.UPDATABLE_FIELDS
        }
        if change:
            if fields:
                services.agent_update(agent=A1Agent.objects.get(pk=obj.pk), actor=actor, **fields)
            return
        for required in ("name", "handle", "agent_type"):
            fields.pop(required, None)
        agent, key = services.agent_create(
            owner_id=form.cleaned_data["owner_id"],
            name=form.cleaned_data["name"],
            handle=form.cleaned_data["handle"],
            agent_type=form.cleaned_data["agent_type"],
            actor=actor,
            **fields,
        )
        obj.pk, obj.app_id, obj.created_at = agent.pk, agent.app_id, agent.created_at
        obj._state.adding = False
        # Shown by response_add, in its response only (see app_key_response).
        request._a1zap_new_app_key = key  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: A1Agent, post_url_continue: str | None = None
    ) -> HttpResponse:
        key = getattr(request, "_a1zap_new_app_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        return self.app_key_response(request, obj, key, rotated=False)

    def delete_model(self, request: HttpRequest, obj: A1Agent) -> None:
        services.agent_delete(agent=obj, actor=Actor.staff(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[A1Agent]) -> None:
        actor = Actor.staff(request.user)
        for agent in queryset:
            services.agent_delete(agent=agent, actor=actor)


@admin.register(App)
class AppAdmin(ReadOnlyAdmin, ExactIdSearchAdmin):
    """Apps, read-only: keys are rotated from the agent's page; hashes are never shown."""

    staff_resource = "app"

    list_display = ("id", "key_prefix", "status", "agent", "key_created_at", "created_at")
    list_filter = ("status",)
    search_fields = ("=id", "=key_prefix")
    id_search_fields = ("pk",)
    list_select_related = ("agent",)
    fields = ("id", "agent", "key_prefix", "status", "key_created_at", "created_at", "updated_at")
    readonly_fields = fields
    ordering = ("id",)  # the primary key's index; apps are found from their agent

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        return queryset.filter(key_prefix=term.removesuffix("…"))
