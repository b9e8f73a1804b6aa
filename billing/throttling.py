"""Per-plan rate limits for owners and apps (`core.throttling`: a fixed one-minute window
per caller in Redis, one round trip, let through if the cache is unreachable). The plan's
rates come from the process's memory for a few seconds
(`billing.selectors.request_rates_for_user`). Staff are not limited; anonymous callers (public
endpoints) are limited per IP address, the one `client_ip_address` gives (the admin's login
lockout uses the same), which a client cannot choose. PostgreSQL, not Redis, is what the
limits protect.
"""

from typing import Any

from django.conf import settings
from rest_framework.request import Request

from billing.selectors import request_rates_for_user
from core.client_address import client_ip_address
from core.principals import app_of, is_staff, owner_of
from core.throttling import WindowThrottle


class PlanRateThrottle(WindowThrottle):
    """Allow each caller the number of requests per minute its plan gives it."""

    def get_ident(self, request: Request) -> str:
        """Return the client's address, believing only what our own proxies wrote."""
        return client_ip_address(request._request) or ""

    def identity(self, request: Request, view: Any) -> tuple[str, int] | None:
        """(scope:caller id, limit per minute), or None for callers never limited."""
        user = request.user
        if is_staff(user):
            return None
        app = app_of(user)
        if app is not None:
            return f"app:{app.app_id}", request_rates_for_user(app.owner_id).app_per_minute
        owner = owner_of(user)
        if owner is not None:
            return f"owner:{owner.id}", request_rates_for_user(owner.id).owner_per_minute
        return f"anon:{self.get_ident(request)}", settings.ANON_REQUESTS_PER_MINUTE
