"""A limit on the endpoint actions that make us send (ping, replay): so many per minute per
endpoint, beside the owner's plan limit. Counted like the plan throttle (one Redis round trip,
`core.cache.window_count`), and let through if the cache is unreachable."""

import logging
import math
import time
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.cache import window_count
from core.principals import owner_of

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class EndpointActionThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        owner = owner_of(request.user)
        if owner is None:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"throttle:webhook-action:{owner.id}:{view.kwargs.get('pk')}:{window}"
        try:
            count = window_count(key, seconds=WINDOW_SECONDS + 5)
        except Exception:
            logger.warning("Rate limiting skipped: the cache is unreachable", exc_info=True)
            return True
        if count <= settings.WEBHOOK_ACTIONS_PER_MINUTE:
            return True
        self.retry_after = (window + 1) * WINDOW_SECONDS - now
        return False

    def wait(self) -> float | None:
        return math.ceil(self.retry_after) if self.retry_after is not None else None
