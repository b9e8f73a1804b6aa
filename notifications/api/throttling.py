"""A limit on the endpoint actions that make us send (ping, replay): so many per minute per
endpoint, beside the owner's plan limit (`core.throttling`: one Redis round trip, let through
if the cache is unreachable)."""

from typing import Any

from django.conf import settings
from rest_framework.request import Request

from core.principals import owner_of
from core.throttling import WindowThrottle


class EndpointActionThrottle(WindowThrottle):
    def identity(self, request: Request, view: Any) -> tuple[str, int] | None:
        owner = owner_of(request.user)
        if owner is None:
            return None
        caller = f"webhook-action:{owner.id}:{view.kwargs.get('pk')}"
        return caller, settings.WEBHOOK_ACTIONS_PER_MINUTE
