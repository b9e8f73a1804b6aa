"""Tasks per second through one Celery worker (`make worker`: prefork, CELERY_CONCURRENCY
processes), on the bench's broker (BENCH_BROKER_URL, default Redis database 4) and database.

The task (`bench.task_queue.touch`, loaded into the worker with `--include`) does what a
small real task does: one PostgreSQL query and one cache write. The figure is end to end:
from the first message sent to the last task done (a cache counter reaching the count), so
it includes serialising, the broker both ways and acknowledging. The floor is the same work
in a loop in this process, with no queue.
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from celery import shared_task

ROOT = Path(__file__).resolve().parent.parent
BENCH_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")
COUNTER = "bench:task_queue:done"


def _work() -> None:
    from django.core.cache import cache
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    cache.incr(COUNTER)


@shared_task(name="bench.touch", ignore_result=True)
def touch() -> None:
    _work()


@dataclass
class QueueTimings:
    tasks: int
    concurrency: int
    tasks_per_second: float
    floor_per_second: float


def _wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("the bench worker did not get there in time")
        time.sleep(0.01)


def measure(env: dict[str, str], tasks: int = 5_000, concurrency: int = 2) -> QueueTimings:
    """Start one worker, send `tasks` tasks, time until all are done; then the floor."""
    from django.core.cache import cache

    from a1zap.celery import app

    os.environ["CELERY_BROKER_URL"] = BENCH_BROKER_URL
    app.conf.broker_url = BENCH_BROKER_URL
    worker_env = {**env, "CELERY_BROKER_URL": BENCH_BROKER_URL, "LOG_LEVEL": "WARNING"}
    app.control.purge()
    worker = subprocess.Popen(  # noqa: S603 (our own celery and arguments)
        [str(ROOT / ".venv/bin/celery"), "-A", "a1zap", "worker", "--include",
         "bench.task_queue", "--concurrency", str(concurrency), "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(lambda: bool(app.control.ping(timeout=0.5)), 60)
        cache.set(COUNTER, 0, timeout=None)
        started = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(tasks):
                touch.apply_async(producer=producer)
        _wait_for(lambda: (cache.get(COUNTER) or 0) >= tasks, 600)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    cache.set(COUNTER, 0, timeout=None)
    floor_started = time.perf_counter()
    for _ in range(tasks):
        _work()
    floor = tasks / (time.perf_counter() - floor_started)
    return QueueTimings(tasks, concurrency, tasks / elapsed, floor)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from bench import usage_ingest

    usage_ingest.setup_django()
    result = measure(dict(os.environ))
    print(f"{result.tasks_per_second:,.0f} tasks/s through one worker "
          f"({result.concurrency} processes); floor {result.floor_per_second:,.0f}/s")  # fmt: skip
