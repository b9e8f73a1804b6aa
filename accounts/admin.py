from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest

from a1zap.admin_widgets import CompactTextAdmin
from accounts.models import StackUser


@admin.register(StackUser)
class StackUserAdmin(CompactTextAdmin):
    """Show the user mirror read-only: Stack Auth owns users, tokens and webhooks feed it."""

    list_display = ("id", "email", "display_name", "last_seen_at", "deleted_at")
    list_filter = (("deleted_at", admin.EmptyFieldListFilter),)
    search_fields = ("=id", "=email")
    ordering = ("-last_seen_at",)
    readonly_fields = (
        "id",
        "email",
        "display_name",
        "first_seen_at",
        "last_seen_at",
        "deleted_at",
        "updated_at",
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """Find a user by exact id or by email in any case, using the two indexes."""
        term = search_term.strip()
        if not term:
            return queryset, False
        # Django's `=email` would compare UPPER(email), which the lower(email) index cannot serve.
        matches = queryset.annotate(email_lower=Lower("email")).filter(
            Q(pk=term) | Q(email_lower=term.lower())
        )
        return matches, False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StackUser | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: StackUser | None = None) -> bool:
        # Deleting a user means deleting their agents too; that is Stack Auth's call.
        return False
