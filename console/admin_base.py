"""What the product's admins share: staff permissions from one map, a paginator that never
counts the whole table, search through indexes, and panels below a change form.

`StaffPermissionsAdmin` answers Django's `has_*_permission` from `core.staff_permissions`,
the same map the API checks, so the admin and the API cannot disagree about staff;
`ReadOnlyAdmin` is one whose resource the map lets staff only view.

Large tables: Django's changelist asks its paginator for `count` to draw the page links, which is a
`SELECT COUNT(*)` over the table: seconds on tens of millions of rows, on every page view.
Here an unfiltered list uses PostgreSQL's own estimate (`pg_class.reltuples`, kept current
by autovacuum), and a filtered one counts at most `exact_count_limit + 1` rows.
"""

import functools
import operator
import uuid
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.functional import cached_property

from console.admin_widgets import CompactTextAdmin
from core.staff_permissions import staff_may, staff_permission


def table_row_estimate(model: type[Model], *, using: str = "default") -> int:
    """PostgreSQL's estimate of the table's rows; -1 if it has never been analysed."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else -1


class EstimatedCountPaginator(Paginator):
    """Count cheaply: an estimate for a large unfiltered table, a capped count otherwise.

    Below `exact_count_limit` rows the count is exact. Past it, the count is approximate
    (`is_approximate`), and any page number is accepted: a page past the end is empty.
    """

    exact_count_limit = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_approximate = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if not queryset.query.where:
            estimate = table_row_estimate(queryset.model, using=queryset.db)
            if estimate > self.exact_count_limit:
                self.is_approximate = True
                return estimate
        # Only the primary keys, without ordering or annotations:
        # SELECT COUNT(*) FROM (SELECT id FROM … WHERE … LIMIT n + 1).
        capped = queryset.order_by().values("pk")[: self.exact_count_limit + 1].count()
        self.is_approximate = capped > self.exact_count_limit
        return capped

    def validate_number(self, number: Any) -> int:
        self.count  # noqa: B018 (sets is_approximate)
        if not self.is_approximate:
            return super().validate_number(number)
        try:
            page = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if page < 1:
            raise EmptyPage("That page number is less than 1")
        return page

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        if not self.is_approximate:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        return Page(self.object_list[bottom : bottom + self.per_page], number, self)


class LargeTableAdmin(CompactTextAdmin):
    """An admin for a table that grows without bound: no full COUNT(*), ever."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False


class StaffPermissionsAdmin(admin.ModelAdmin):
    """Answer view, add, change and delete from the staff permission map for `staff_resource`.

    Put it first among the bases. A custom action asks `self.staff_may(request, operation)`.
    """

    staff_resource: str

    def staff_may(self, request: HttpRequest, operation: str) -> bool:
        return staff_may(request.user, self.staff_resource, operation)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.staff_may(request, "view")

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.staff_may(request, "add")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.staff_may(request, "change")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.staff_may(request, "delete")


class ReadOnlyAdmin(StaffPermissionsAdmin, LargeTableAdmin):
    """A table staff only read: the permission map gives its resource no add, change or
    delete, for any role, superusers included.

    Checked when the class is made: this admin saves and deletes through Django's defaults,
    not through a service, so a write granted in the map would bypass the app's rules.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        writes = [
            operation
            for operation in ("add", "change", "delete")
            if staff_permission(cls.staff_resource, operation) is not None
        ]
        if writes:
            raise ImproperlyConfigured(
                f"{cls.__name__} is read-only, but the staff permission map gives "
                f"{cls.staff_resource!r} {', '.join(writes)}."
            )


def as_uuid(term: str) -> uuid.UUID | None:
    """The search term as a UUID, or None if it is not one."""
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


class ExactIdSearchAdmin(admin.ModelAdmin):
    """Search through indexes only, never Django's `search_fields` lookups: `=field` compares
    UPPER() values and the default a LIKE pattern, which no index serves (ids are exact and
    case-sensitive).

    A term that is a UUID matches the `id_search_fields` exactly; any other term (every
    term, if there are none) goes to `search_other`, which finds nothing unless overridden.
    `search_fields` still names one field, which shows the search box.
    """

    id_search_fields: tuple[str, ...] = ()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        as_id = as_uuid(term) if self.id_search_fields else None
        if as_id is not None:
            matches = (Q(**{field: as_id}) for field in self.id_search_fields)
            return queryset.filter(functools.reduce(operator.or_, matches)), False
        return self.search_other(queryset, term), False

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        """The matches of a term that is not looked up as an id."""
        return queryset.none()


class OwnerSearchAdmin(ExactIdSearchAdmin):
    """Search by the exact owner id (`owner_field`), along the table's owner index."""

    owner_field = "owner_id"

    def search_other(self, queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
        return queryset.filter(**{self.owner_field: term})


class PanelsAdmin(admin.ModelAdmin):
    """A change page with panels below the form: `change_panels` gives the template their
    context, for an object that exists (a missing one is Django's redirect, as usual)."""

    def change_panels(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        raise NotImplementedError

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = dict(extra_context or {})
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            context.update(self.change_panels(request, obj))
        return super().change_view(request, object_id, form_url, context)
