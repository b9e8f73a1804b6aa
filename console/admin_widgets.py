"""Admin defaults shared by every app's admin."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models


class CompactTextAdmin(admin.ModelAdmin):
    """Show the seed's TEXT columns as one-line inputs; long-form fields opt back in."""

    multiline_fields: tuple[str, ...] = ("description", "content")
    show_full_result_count = False

    def formfield_for_dbfield(self, db_field: models.Field, request: Any, **kwargs: Any) -> Any:
        if isinstance(db_field, models.TextField) and db_field.name not in self.multiline_fields:
            kwargs.setdefault("widget", forms.TextInput(attrs={"size": 60}))
        return super().formfield_for_dbfield(db_field, request, **kwargs)
