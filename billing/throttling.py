"""Per-plan rate limits for owners and apps, counted in Redis through the Django cache.

A fixed one-minute window per caller: `INCR` on a key that expires with the window (with
its `EXPIRE`, one round trip: `core.cache.window_count`), atomic in Redis, so concurrent
requests cannot slip past the limit. The plan's rates come from the process's memory for a
few seconds (`billing.selectors.request_rates_for_user`). Staff are not limited;
anonymous callers (public endpoints) are limited per IP address, the one `client_ip_address`
gives (the admin's login lockout uses the same), which a client cannot choose.

If the cache cannot be reached, requests are let through (and a warning is logged): an
outage of Redis must not take the API down with it, and PostgreSQL, not Redis, is what the
limits protect.
"""

import logging
import math
import time
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from billing.selectors import request_rates_for_user
from core.cache import window_count
from core.client_address import client_ip_address
from core.principals import app_of, is_staff, owner_of

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class PlanRateThrottle(BaseThrottle):
    """Allow each caller the number of requests per minute its plan gives it."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def get_ident(self, request: Request) -> str:
        """Return the client's address, believing only what our own proxies wrote."""
        return client_ip_address(request._request) or ""

    def _identity(self, request: Request) -> tuple[str, str, int] | None:
        """Return (scope, caller id, limit per minute), or None for callers never limited."""
        user = request.user
        if is_staff(user):
            return None
        app = app_of(user)
        if app is not None:
            return "app", str(app.app_id), request_rates_for_user(app.owner_id).app_per_minute
        owner = owner_of(user)
        if owner is not None:
            return "owner", owner.id, request_rates_for_user(owner.id).owner_per_minute
        return "anon", self.get_ident(request), settings.ANON_REQUESTS_PER_MINUTE

    def allow_request(self, request: Request, view: Any) -> bool:
        identity = self._identity(request)
        if identity is None:
            return True
        scope, caller, limit = identity
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"throttle:{scope}:{caller}:{window}"
        try:
            count = window_count(key, seconds=WINDOW_SECONDS + 5)
        except Exception:
            logger.warning("Rate limiting skipped: the cache is unreachable", exc_info=True)
            return True
        if count <= limit:
            return True
        self.retry_after = (window + 1) * WINDOW_SECONDS - now
        return False

    def wait(self) -> float | None:
        return math.ceil(self.retry_after) if self.retry_after is not None else None
