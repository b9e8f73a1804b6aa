"""How long a failing job waits before its next try: exponential, capped, with jitter.

The first delay and the cap are settings (JOBS_RETRY_FIRST_DELAY, JOBS_RETRY_MAX_DELAY,
seconds), read at each call. Jitter spreads the retries of many jobs that failed together
(an outage) so that they do not all come back at the same instant.
"""

import random

from django.conf import settings


def retry_delay(attempt: int) -> float:
    """Seconds to wait after the `attempt`-th failure (1 for the first): half of the capped
    exponential delay, plus a random share of the other half."""
    ceiling = min(
        settings.JOBS_RETRY_FIRST_DELAY * 2 ** max(attempt - 1, 0), settings.JOBS_RETRY_MAX_DELAY
    )
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (not for secrets)
