"""Agent templates in the admin: the moderation queue, decisions (approve, reject with a
reason, hide with a reason, feature), users' reports. Staff never edit a template's content:
each decision is a service call, recorded in the audit trail with the staff member."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import URLPattern, path, reverse

from agent_templates import services
from agent_templates.models import (
    AgentTemplate,
    AgentTemplateVersion,
    ModerationStatus,
    ReportStatus,
    TemplateModerationQueue,
    TemplateReport,
)
from agent_templates.selectors import slug_is
from audit.actors import Actor
from console.admin_base import ExactIdSearchAdmin, StaffPermissionsAdmin
from core.errors import ServiceError
from core.staff_permissions import staff_may

TEMPLATE_FIELDS = (
    "id", "slug", "name", "owner_id", "source_agent", "description", "category", "tags",
    "visibility", "moderation_status", "moderation_reason", "featured", "clone_count",
    "latest_version", "published_at", "created_at", "updated_at",
)  # fmt: skip


class VersionInline(admin.TabularInline):
    """The template's versions, read-only: what a clone is given, nothing else."""

    model = AgentTemplateVersion
    fields = ("number", "changelog", "snapshot", "created_at")
    readonly_fields = fields
    ordering = ("-number",)
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return staff_may(request.user, "agent_template", "view")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AgentTemplate)
class AgentTemplateAdmin(StaffPermissionsAdmin, ExactIdSearchAdmin):
    staff_resource = "agent_template"
    list_display = (
        "slug", "name", "owner_id", "visibility", "moderation_status", "featured",
        "clone_count", "latest_version", "updated_at",
    )  # fmt: skip
    list_filter = ("moderation_status", "visibility", "featured", "category")
    search_fields = ("slug",)  # shows the search box
    search_help_text = (
        "Exact slug (any case), owner (a user's or team's id), template id or source agent id."
    )
    id_search_fields = ("pk", "source_agent_id")
    fields = TEMPLATE_FIELDS
    readonly_fields = TEMPLATE_FIELDS
    inlines = (VersionInline,)
    ordering = ("-created_at", "-id")
    actions = ("approve_selected", "feature_selected", "unfeature_selected")
    change_form_template = "admin/agent_templates/agenttemplate/change_form.html"

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        # The slug through its lower() index, the owner through the owner index.
        return queryset.filter(Q(slug_is(term.lstrip("@"))) | Q(owner_id=term))

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return self.staff_may(request, "moderate")

    def _decide(
        self, request: HttpRequest, templates: QuerySet[AgentTemplate], decision: str
    ) -> None:
        actor = Actor.staff(request.user)
        done = 0
        for template in templates:
            try:
                services.template_moderate(template=template, decision=decision, actor=actor)
            except ServiceError as error:
                self.message_user(request, f"{template.slug}: {error.detail}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{decision}: {done} template(s).", messages.SUCCESS)

    @admin.action(description="Approve selected templates", permissions=["moderate"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[AgentTemplate]) -> None:
        self._decide(request, queryset, "approve")

    @admin.action(description="Feature selected templates", permissions=["moderate"])
    def feature_selected(self, request: HttpRequest, queryset: QuerySet[AgentTemplate]) -> None:
        self._decide(request, queryset, "feature")

    @admin.action(description="Stop featuring selected templates", permissions=["moderate"])
    def unfeature_selected(self, request: HttpRequest, queryset: QuerySet[AgentTemplate]) -> None:
        self._decide(request, queryset, "unfeature")

    # --- the template page's decisions (reject and hide need a reason) -------------------

    def get_urls(self) -> list[URLPattern]:
        moderate = path(
            "<path:object_id>/moderate/",
            self.admin_site.admin_view(self.moderate_view),
            name=f"agent_templates_{self.opts.model_name}_moderate",
        )
        return [moderate, *super().get_urls()]

    def moderate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Apply one decision (POST `decision`, and `reason` for reject and hide)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_moderate_permission(request):
            raise PermissionDenied
        template = self.get_object(request, unquote(object_id))
        if template is None:
            raise Http404("No such template.")
        decision = request.POST.get("decision", "")
        if decision not in services.DECISIONS:
            raise Http404("No such decision.")
        try:
            services.template_moderate(
                template=template,
                decision=decision,
                reason=request.POST.get("reason", ""),
                actor=Actor.staff(request.user),
            )
            self.message_user(request, f"{template.slug}: {decision} done.", messages.SUCCESS)
        except ServiceError as error:
            self.message_user(request, f"{template.slug}: {error.detail}", messages.ERROR)
        return HttpResponseRedirect(
            reverse(
                f"admin:agent_templates_{self.opts.model_name}_change", args=(quote(template.pk),)
            )
        )

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> HttpResponse:
        obj = kwargs.get("obj")
        if obj is not None:
            context["moderation"] = {
                "can_moderate": self.has_moderate_permission(request),
                "url": reverse(
                    f"admin:agent_templates_{self.opts.model_name}_moderate",
                    args=(quote(obj.pk),),
                ),
                "decisions": list(services.DECISIONS),
            }
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(TemplateModerationQueue)
class TemplateModerationQueueAdmin(AgentTemplateAdmin):
    """Public templates waiting for a decision, oldest first (a partial index serves it)."""

    def get_list_filter(self, request: HttpRequest) -> Any:
        return ("category",)

    def get_ordering(self, request: HttpRequest) -> Any:
        return ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentTemplate]:
        return super().get_queryset(request).filter(moderation_status=ModerationStatus.PENDING)


@admin.register(TemplateReport)
class TemplateReportAdmin(StaffPermissionsAdmin, ExactIdSearchAdmin):
    staff_resource = "template_report"
    list_display = ("id", "template", "reporter_id", "reason", "status", "created_at")
    list_filter = ("status",)
    list_select_related = ("template",)
    search_fields = ("template__slug",)  # shows the search box
    search_help_text = "Exact template slug."
    fields = ("id", "template", "reporter_id", "reason", "status", "staff_note", "created_at",
              "resolved_at")  # fmt: skip
    readonly_fields = fields
    ordering = ("-created_at",)
    actions = ("resolve_selected", "dismiss_selected")

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        return queryset.filter(template__in=AgentTemplate.objects.filter(slug_is(term)))

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return self.staff_may(request, "moderate")

    def _close(self, request: HttpRequest, reports: QuerySet[TemplateReport], status: str) -> None:
        actor = Actor.staff(request.user)
        done = 0
        for report in reports.filter(status=ReportStatus.OPEN):
            services.report_close(report=report, status=status, actor=actor)
            done += 1
        self.message_user(request, f"{done} report(s) {status}.", messages.SUCCESS)

    @admin.action(description="Mark resolved (action taken)", permissions=["moderate"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[TemplateReport]) -> None:
        self._close(request, queryset, ReportStatus.RESOLVED)

    @admin.action(description="Dismiss", permissions=["moderate"])
    def dismiss_selected(self, request: HttpRequest, queryset: QuerySet[TemplateReport]) -> None:
        self._close(request, queryset, ReportStatus.DISMISSED)
