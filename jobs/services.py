"""Writes to the jobs tables: failures the worker records, retries staff ask for, runs of
scheduled jobs that must happen once per slot however often they are sent."""

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from celery import current_app
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from core.advisory_locks import advisory_lock_if_free
from jobs.models import FailedJob, ScheduledRun
from jobs.queue_status import broker_connection

logger = logging.getLogger(__name__)

MAX_ERROR = 2000
MAX_TRACEBACK = 20_000


def failed_job_record(
    *,
    task_id: str,
    task_name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    error: str,
    traceback: str,
    retries: int,
) -> bool:
    """Record that a task failed for good; False if this task id was already recorded."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO failed_jobs (task_id, task_name, args, kwargs, error, traceback, retries)
            VALUES (%s, %s, %s::jsonb, %s::jsonb, %s, %s, %s)
            ON CONFLICT (task_id) DO NOTHING
            """,
            [
                task_id, task_name, json.dumps(args), json.dumps(kwargs), error[:MAX_ERROR],
                traceback[-MAX_TRACEBACK:], max(retries, 0),
            ],
        )  # fmt: skip
        recorded = cursor.rowcount == 1
    if recorded:
        logger.error("Job %s (%s) failed for good: %s", task_name, task_id, error[:MAX_ERROR])
    return recorded


@transaction.atomic
def failed_job_retry(*, job_id: int, retried_by: str) -> str | None:
    """Send a failed job's task again, once; return the new task id, or None if it was
    already retried. Raises kombu's OperationalError if the broker cannot be reached (and
    nothing is recorded)."""
    job = FailedJob.objects.select_for_update().get(pk=job_id)
    if job.retried_at is not None:
        return None
    retry_task_id = str(uuid.uuid4())
    with broker_connection() as conn:
        current_app.send_task(
            job.task_name, args=job.args, kwargs=job.kwargs, task_id=retry_task_id,
            connection=conn, retry=False,
        )  # fmt: skip
    FailedJob.objects.filter(pk=job.pk).update(
        retried_at=Now(), retried_by=retried_by, retry_task_id=retry_task_id
    )
    return retry_task_id


def scheduled_run_once(*, job: str, slot: str, work: Callable[[], str]) -> str | None:
    """Run `work` for this job and slot unless it already ran (or is running) for the slot;
    return its outcome, or None when this call found the slot taken.

    A session lock on (job, slot) keeps two senders from running it at the same time; the
    unique (job, slot) row, finished once `work` returns, keeps a later one from running it
    again. A run that died before finishing leaves its row unfinished: the next send of the
    same slot (a redelivery, the other beat) runs it.
    """
    with advisory_lock_if_free(f"scheduled:{job}:{slot}") as taken:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO scheduled_runs (job, slot) VALUES (%s, %s) "
                    "ON CONFLICT (job, slot) DO UPDATE SET started_at = statement_timestamp() "
                    "WHERE scheduled_runs.finished_at IS NULL RETURNING id",
                    [job, slot],
                )
                row = cursor.fetchone()
            if row is not None:
                outcome = work()
                ScheduledRun.objects.filter(pk=row[0]).update(
                    finished_at=Now(), outcome=outcome[:MAX_ERROR]
                )
                logger.info("Scheduled job %s for %s: %s", job, slot, outcome)
                return outcome
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO scheduled_runs (job, slot, duplicates) VALUES (%s, %s, 1) "
            "ON CONFLICT (job, slot) DO UPDATE SET duplicates = scheduled_runs.duplicates + 1",
            [job, slot],
        )
    logger.info("Scheduled job %s for %s already ran or is running: skipped", job, slot)
    return None


def scheduled_run_daily(*, job: str, work: Callable[[], str]) -> str | None:
    """`scheduled_run_once` for a daily job: the slot is today's date (UTC)."""
    return scheduled_run_once(job=job, slot=timezone.now().date().isoformat(), work=work)
