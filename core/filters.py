"""django-filter's DRF backend, without building a filter form for a request that names no
filter: a list's plain GET is the common case, and the FilterSet with its form costs about as
much as the list's own query."""

from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.request import Request


class FilterBackend(DjangoFilterBackend):
    """Filter with the view's FilterSet only when a query parameter may be one of its filters."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not _names_a_filter(request, filterset_class):
            return queryset
        return super().filter_queryset(request, queryset, view)


def _names_a_filter(request: Request, filterset_class: Any) -> bool:
    # A filter reads its own name, or its name with a suffix (`since_after`, `price_min`).
    names = filterset_class.base_filters.keys()
    return any(
        parameter == name or parameter.startswith(f"{name}_")
        for parameter in request.query_params
        for name in names
    )


class RowsFilterSet(filters.FilterSet):
    """A FilterSet whose filters may also narrow `core.sql_rows.SqlRows` (a hot list's
    hand-written SELECT): each of its filters only calls `.filter(<column>[__exact]=value)`
    or `.filter(<column>__isnull=...)`, which SqlRows takes. django-filter's own
    filter_queryset insists on a QuerySet; this one does what it does without the check."""

    def filter_queryset(self, queryset: Any) -> Any:
        for name, value in self.form.cleaned_data.items():
            queryset = self.filters[name].filter(queryset, value)
        return queryset
