"""The base class of every task (`a1zap.celery` makes it the app's default).

A task that fails for good, because it exhausted its retries or raised what retrying cannot
mend, is written to `failed_jobs` by the worker, never silently dropped; staff retry it from
the admin. `retry_later` is the one retry policy: exponential backoff with jitter
(`jobs.retrying.retry_delay`), up to JOBS_MAX_RETRIES retries.
"""

from typing import Any, ClassVar, NoReturn

from celery import Task
from django.conf import settings

from jobs.retrying import retry_delay


class RecordedTask(Task):
    # What a retry by staff changes in the task's keyword arguments (e.g. to try at once
    # rather than wait for the next due time of the row it works on).
    staff_retry_kwargs: ClassVar[dict[str, Any]] = {}

    def retry_later(self, error: Exception, *, countdown: float | None = None) -> NoReturn:
        """Send this task again after `countdown` seconds (the backoff of its next attempt by
        default); once JOBS_MAX_RETRIES are spent, raise `error`, and the failure is recorded."""
        delay = retry_delay(self.request.retries + 1) if countdown is None else countdown
        raise self.retry(exc=error, countdown=delay, max_retries=settings.JOBS_MAX_RETRIES)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        from jobs.services import failed_job_record

        failed_job_record(
            task_id=task_id,
            task_name=self.name,
            args=list(args or ()),
            kwargs={**(kwargs or {}), **self.staff_retry_kwargs},
            error=f"{type(exc).__name__}: {exc}",
            traceback=str(einfo or ""),
            retries=self.request.retries or 0,
        )
