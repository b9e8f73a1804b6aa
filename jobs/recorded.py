"""The base class of every task (`a1zap.celery` makes it the app's default).

A task that fails for good, because it exhausted its retries or raised what retrying cannot
mend, is written to `failed_jobs` by the worker, never silently dropped; staff retry it from
the admin. `retry_later` is the one retry policy: exponential backoff with jitter
(`jobs.retrying.retry_delay`), up to the task's `max_retries`.
"""

from typing import Any, ClassVar, NoReturn

from celery import Task

from jobs.retrying import retry_delay


class RecordedTask(Task):
    # What a retry by staff changes in the task's keyword arguments (e.g. to try at once
    # rather than wait for the next due time of the row it works on).
    staff_retry_kwargs: ClassVar[dict[str, Any]] = {}
    max_retries = 10

    def retry_later(self, error: Exception) -> NoReturn:
        """Send this task again after the backoff for its next attempt; once `max_retries`
        are spent, raise `error` (and the failure is recorded)."""
        raise self.retry(exc=error, countdown=retry_delay(self.request.retries + 1))

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
