"""Reads about webhooks, scoped to the owner making the request."""

from typing import Any

from django.db.models import Q, QuerySet

from core.principals import owner_of
from notifications.models import WebhookAttempt, WebhookEndpoint
from teams.selectors import admin_team_ids_of_member


def _managed_by(user_id: str, *, via: str = "") -> Q:
    """Endpoints of the user's own account and of every team they are an admin of now."""
    return Q(**{f"{via}owner_id": user_id}) | Q(
        **{f"{via}owner_id__in": admin_team_ids_of_member(user_id)}
    )


def endpoint_queryset_for(user: Any) -> QuerySet[WebhookEndpoint]:
    """The owner's endpoints and those of the teams they are an admin of; none for anyone
    else."""
    owner = owner_of(user)
    if owner is None:
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.filter(_managed_by(owner.id))


def attempt_queryset_for(user: Any, *, endpoint_id: Any) -> QuerySet[WebhookAttempt]:
    """Every attempt to deliver to one of the owner's endpoints, with its event."""
    owner = owner_of(user)
    if owner is None:
        return WebhookAttempt.objects.none()
    return WebhookAttempt.objects.filter(
        _managed_by(owner.id, via="delivery__endpoint__"), delivery__endpoint_id=endpoint_id
    ).select_related("delivery", "delivery__event")
