"""Helpers for tests that run background work on a real Celery worker (see the `worker`
fixture in conftest.py): wait for what the worker does, with a deadline that only fails."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Generous: a slow CI machine still finishes long before it; nothing asserts on durations.
DEADLINE_SECONDS = 60.0


def wait_until(check: Callable[[], T | None], what: str, deadline: float = DEADLINE_SECONDS) -> T:
    """Poll `check` until it returns something truthy, and return that; fail naming `what`
    if the deadline passes first."""
    give_up = time.monotonic() + deadline
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
