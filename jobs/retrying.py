"""How long a failing job waits before its next try: exponential, capped, with jitter.

The first delay and the cap are settings (JOBS_RETRY_FIRST_DELAY, JOBS_RETRY_MAX_DELAY,
seconds), read at each call. Jitter spreads the retries of many jobs that failed together
(an outage) so that they do not all come back at the same instant.
"""

import random

from django.conf import settings


def retry_ceiling(attempt: int, *, first: float | None = None, cap: float | None = None) -> float:
    """The capped exponential delay after the `attempt`-th failure (1 for the first)."""
    first = settings.JOBS_RETRY_FIRST_DELAY if first is None else first
    cap = settings.JOBS_RETRY_MAX_DELAY if cap is None else cap
    return float(min(first * 2 ** max(attempt - 1, 0), cap))


def retry_delay(attempt: int, *, first: float | None = None, cap: float | None = None) -> float:
    """Seconds to wait after the `attempt`-th failure (1 for the first): half of the capped
    exponential delay, plus a random share of the other half. `first` and `cap` default to
    JOBS_RETRY_FIRST_DELAY and JOBS_RETRY_MAX_DELAY."""
    ceiling = retry_ceiling(attempt, first=first, cap=cap)
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (not for secrets)
