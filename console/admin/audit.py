"""The audit trail in the admin: a read-only log, for everyone, superusers included."""

import re
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from audit.models import AuditEntry, TargetType
from console.admin_base import ExactIdSearchAdmin, ReadOnlyAdmin

ACTION_PATTERN = re.compile(r"[a-z_]+\.[a-z_]+")
TARGET_ADMIN_URLS = {
    TargetType.AGENT: "admin:agents_a1agent_change",
    TargetType.APP_KEY: "admin:agents_app_change",
    TargetType.SUBSCRIPTION: "admin:billing_usersubscription_change",
    TargetType.PLAN: "admin:billing_subscriptionplan_change",
    TargetType.INTEGRATION: "admin:integrations_agentintegration_change",
}


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin, ExactIdSearchAdmin):
    staff_resource = "audit_entry"
    list_display = ("created_at", "actor", "action", "target", "owner_id", "summary")
    list_filter = ("actor_kind", "target_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("target_id",)  # shows the search box; see search_other
    search_help_text = (
        "Exact agent or object id, owner id, actor id or staff username, or an action such as "
        "agent.paused."
    )
    # A UUID is an agent's id (the entries of its changes) or an object's (those about it).
    id_search_fields = ("agent_id", "target_id")
    ordering = ("-created_at", "-id")
    fields = (
        "created_at", "actor_kind", "actor_id", "actor_name", "action", "target_type",
        "target", "agent_id", "owner_id", "changes_table", "context",
    )  # fmt: skip
    readonly_fields = fields

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        """Exact matches only, each through an index."""
        if ACTION_PATTERN.fullmatch(term):
            return queryset.filter(action=term)
        actor_ids = [term]
        # A staff member is recorded by user id: find them by username too.
        staff = get_user_model().objects.filter(username=term).values_list("pk", flat=True)
        actor_ids.extend(str(pk) for pk in staff)
        return queryset.filter(Q(owner_id=term) | Q(target_id=term) | Q(actor_id__in=actor_ids))

    @admin.display(description="who", ordering="actor_kind")
    def actor(self, entry: AuditEntry) -> str:
        return entry.actor_label

    @admin.display(description="target")
    def target(self, entry: AuditEntry) -> str:
        label = f"{entry.get_target_type_display()} {entry.target_id}"
        try:
            url = reverse(TARGET_ADMIN_URLS[TargetType(entry.target_type)],
                          args=(quote(entry.target_id),))  # fmt: skip
        except (KeyError, ValueError, NoReverseMatch):
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="changes")
    def summary(self, entry: AuditEntry) -> str:
        fields = list(entry.changes or {})
        if not fields:
            return "—"
        shown = ", ".join(fields[:5])
        return shown + (f" (+{len(fields) - 5})" if len(fields) > 5 else "")

    @admin.display(description="changes")
    def changes_table(self, entry: AuditEntry) -> str:
        return render_to_string("admin/audit/changes.html", {"changes": entry.changes or {}})
