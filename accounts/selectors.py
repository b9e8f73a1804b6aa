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


def account_emails(account_id: str) -> list[str]:
    """Where to email an account: the user's address; for a team (an account that owns team
    agents), each of its admins' addresses. None for a deleted or unknown account."""
    from teams.selectors import team_admin_ids, team_get

    own = stack_user_email(account_id)
    if own:
        return [own]
    team = team_get(account_id)
    if team is None or team.deleted_at is not None:
        return []
    admins = team_admin_ids(account_id)  # every one of them, not a page of the members
    emails = StackUser.objects.filter(pk__in=admins, deleted_at__isnull=True).values_list(
        "email", flat=True
    )
    return sorted(email for email in emails if email)
