"""The tables of background work: jobs that failed for good, and runs of scheduled jobs."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class FailedJob(models.Model):
    """A task that exhausted its retries (or failed in a way retrying cannot mend).

    Written by the worker (`jobs.recorded.RecordedTask`), once per task id, so a message
    delivered twice is recorded once. Staff see the list in the admin and may send the task
    again (`jobs.services.failed_job_retry`), which fills in the `retried_*` columns.
    """

    task_id = models.TextField(unique=True)
    task_name = models.TextField()
    # What a retry sends: the task's own arguments (with what a manual retry changes, see
    # `RecordedTask.staff_retry_kwargs`).
    args = models.JSONField(default=list, db_default=[])
    kwargs = models.JSONField(default=dict, db_default={})
    error = models.TextField()
    traceback = models.TextField(blank=True, default="", db_default="")
    retries = models.IntegerField(default=0, db_default=0)
    failed_at = models.DateTimeField(db_default=Now())
    retried_at = models.DateTimeField(null=True, blank=True)
    retried_by = models.TextField(null=True, blank=True)
    retry_task_id = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "failed_jobs"
        ordering = ("-failed_at", "-id")
        permissions = [("retry_failedjob", "Can send a failed job again")]
        indexes = [models.Index(fields=["-failed_at"], name="failed_jobs_newest")]
        constraints = [
            models.CheckConstraint(
                condition=Q(retries__gte=0), name="failed_jobs_retries_positive"
            ),
            models.CheckConstraint(
                condition=Q(
                    retried_at__isnull=True, retried_by__isnull=True, retry_task_id__isnull=True
                )
                | Q(
                    retried_at__isnull=False, retried_by__isnull=False, retry_task_id__isnull=False
                ),
                name="failed_jobs_retry_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} ({self.task_id})"


class ScheduledRun(models.Model):
    """One run of a scheduled job for one slot (a day, a month): the slot is unique per job, so
    a second scheduler (two beats by mistake) or a redelivered message finds it taken."""

    job = models.TextField()
    slot = models.TextField()
    started_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(null=True, blank=True)
    # How many more times the job was sent for this slot and found it done or running.
    duplicates = models.IntegerField(default=0, db_default=0)

    class Meta:
        db_table = "scheduled_runs"
        ordering = ("-started_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["job", "slot"], name="scheduled_runs_once_per_slot"),
            models.CheckConstraint(
                condition=Q(duplicates__gte=0), name="scheduled_runs_duplicates_positive"
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(finished_at__gte=models.F("started_at")),
                name="scheduled_runs_finish_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job} for {self.slot}"
