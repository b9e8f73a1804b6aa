"""A fixed one-minute window per caller, counted in Redis through the Django cache: `INCR` on
a key that expires with the window (with its `EXPIRE`, one round trip: `core.cache.window_count`),
atomic in Redis, so concurrent requests cannot slip past the limit.

Subclasses say who the caller is and what their limit is (`identity`). If the cache cannot be
reached, requests are let through (and a warning is logged): an outage of Redis must not take
the API down with it.
"""

import logging
import math
import time
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.cache import window_count

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class WindowThrottle(BaseThrottle):
    """Allow each caller `limit` requests per minute."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def identity(self, request: Request, view: Any) -> tuple[str, int] | None:
        """(the caller's key, their limit per minute), or None for a caller never limited."""
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        identity = self.identity(request, view)
        if identity is None:
            return True
        caller, limit = identity
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        try:
            count = window_count(f"throttle:{caller}:{window}", seconds=WINDOW_SECONDS + 5)
        except Exception:
            logger.warning("Rate limiting skipped: the cache is unreachable", exc_info=True)
            return True
        if count <= limit:
            return True
        self.retry_after = (window + 1) * WINDOW_SECONDS - now
        return False

    def wait(self) -> float | None:
        return math.ceil(self.retry_after) if self.retry_after is not None else None
