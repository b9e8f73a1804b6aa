"""Helpers for tests that run background work on a real Celery worker (see the `worker`
fixture in conftest.py): wait for what the worker does, with a deadline that only fails."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import connection

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


def test_process_environment(**overrides: str) -> dict[str, str]:
    """The environment of a process that works on this test's database and broker (with the
    test settings): e.g. a worker started with `worker_process`, or `manage.py`."""
    database = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "a1zap.settings.test",
        "DATABASE_URL": (
            f"postgres://{database['USER'] or 'root'}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "LOG_FORMAT": "text",
        **overrides,
    }


def manage_py(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `manage.py` in its own process on this test's database (which must be committed:
    a transactional test)."""
    return subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR,
        env=test_process_environment(**(env or {})), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def worker_process(**env: str) -> subprocess.Popen[str]:
    """Start a Celery worker in a process of its own (one that a test can kill), on this
    test's database and broker, consuming one task at a time."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "a1zap", "worker", "--pool", "solo",
            "--concurrency", "1", "--loglevel", "WARNING", "--without-mingle",
            "--without-gossip", "--without-heartbeat",
        ],
        cwd=settings.BASE_DIR, env=test_process_environment(**env), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
