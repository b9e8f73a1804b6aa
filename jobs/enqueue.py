"""Send a task once the caller's transaction commits, never before (the task would not see
the rows it is about) and never for a transaction that rolls back.

A broker that cannot be reached at that moment costs one log line, not the request: every
task sent this way works off a row that the caller committed (an outbox, a ledger row, a
stored event), and a scheduled sweep sends again what is still pending.
"""

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: Any, **kwargs: Any) -> None:
    """Send `task` with these keyword arguments after the current transaction commits."""
    transaction.on_commit(lambda: enqueue_now(task, **kwargs))


def enqueue_now(task: Any, **kwargs: Any) -> bool:
    """Send `task` now; False (and one warning) if the broker cannot be reached."""
    try:
        task.apply_async(kwargs=kwargs)
    except Exception as error:
        logger.warning(
            "Could not queue %s %s (%s: %s); the scheduled sweep will send it",
            task.name, kwargs, type(error).__name__, error,
        )  # fmt: skip
        return False
    return True
