"""Run callables at the same moment, for the tests that two racing callers cannot break a rule.

Each callable runs in its own thread, so with its own database connection (closed when it
ends); the tests that use this need `django_db(transaction=True)`, since threads do not see
a test's uncommitted transaction.
"""

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def race(calls: list[Callable[[], T]], *, timeout: float = 120) -> list[T]:
    """Start every call at once (behind a barrier); return their results, in finishing order."""
    barrier = threading.Barrier(len(calls))
    results: list[T] = []
    lock = threading.Lock()

    def run(call: Callable[[], T]) -> None:
        try:
            barrier.wait()
            result = call()
            with lock:
                results.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results
