"""Reads of the user mirror."""

from typing import Any

from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.db.models.lookups import Exact

from accounts.models import StackUser


def email_is(email: str) -> Exact:
    """A condition on users: the email is this one, in any case, through the lower(email)
    index (`email__iexact` would compare UPPER() values, which that index cannot serve)."""
    return Exact(Lower("email"), email.lower())


def user_ids_with_email(email: str) -> QuerySet[StackUser, Any]:
    return StackUser.objects.filter(email_is(email)).values("id")


def stack_user_email(user_id: str) -> str | None:
    """The user's email address from the mirror; None for a deleted or unknown user."""
    return (
        StackUser.objects.filter(pk=user_id, deleted_at__isnull=True)
        .values_list("email", flat=True)
        .first()
    )
