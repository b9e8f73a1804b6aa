"""Reads about webhooks, scoped to the owner making the request."""

from typing import Any

from django.db.models import QuerySet

from core.principals import owner_of
from notifications.models import WebhookAttempt, WebhookEndpoint


def endpoint_queryset_for(user: Any) -> QuerySet[WebhookEndpoint]:
    """The owner's endpoints; none for anyone else."""
    owner = owner_of(user)
    if owner is None:
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.filter(owner_id=owner.id)


def attempt_queryset_for(user: Any, *, endpoint_id: Any) -> QuerySet[WebhookAttempt]:
    """Every attempt to deliver to one of the owner's endpoints, with its event."""
    owner = owner_of(user)
    if owner is None:
        return WebhookAttempt.objects.none()
    return WebhookAttempt.objects.filter(
        delivery__endpoint_id=endpoint_id, delivery__endpoint__owner_id=owner.id
    ).select_related("delivery", "delivery__event")
