"""Database constraints several apps declare alike."""

from django.db import models
from django.db.models import Q


def both_or_neither(name: str, first: str, second: str) -> models.CheckConstraint:
    """Two nullable columns that are set together or not at all (a message's time and id)."""
    return models.CheckConstraint(
        condition=Q(**{f"{first}__isnull": True, f"{second}__isnull": True})
        | Q(**{f"{first}__isnull": False, f"{second}__isnull": False}),
        name=name,
    )
