"""Background jobs in the admin: the jobs that failed for good, with their error, and an
action to send them again; the runs of scheduled jobs.

Support sees both lists; sending a job again takes the `failed_job` resource's `retry`
permission (the admin role). A retry sends the same task with the same arguments (with what
the task's `staff_retry_kwargs` changes) and is recorded on the row, once.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from console.admin_base import ReadOnlyAdmin
from jobs.models import FailedJob, ScheduledRun
from jobs.services import failed_job_retry

ERROR_PREVIEW = 120


@admin.register(FailedJob)
class FailedJobAdmin(ReadOnlyAdmin):
    staff_resource = "failed_job"
    list_display = ("failed_at", "task_name", "error_preview", "retries", "retried_at",
                    "retried_by")  # fmt: skip
    list_filter = (("retried_at", admin.EmptyFieldListFilter),)
    ordering = ("-failed_at", "-id")  # the failed_jobs_newest index
    fields = ("task_name", "task_id", "args", "kwargs", "error", "traceback", "retries",
              "failed_at", "retried_at", "retried_by", "retry_task_id")  # fmt: skip
    readonly_fields = fields
    actions = ["retry_jobs"]

    @admin.display(description="Error")
    def error_preview(self, obj: FailedJob) -> str:
        return Truncator(obj.error).chars(ERROR_PREVIEW)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return self.staff_may(request, "retry")

    @admin.action(description="Send the selected jobs again", permissions=["retry"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[FailedJob]) -> None:
        sent = skipped = 0
        for job_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                task_id = failed_job_retry(job_id=job_id, retried_by=request.user.get_username())
            except Exception as error:
                self.message_user(
                    request,
                    f"The broker cannot be reached (CELERY_BROKER_URL): {error}. "
                    f"{sent} sent before it failed.",
                    messages.ERROR,
                )
                return
            if task_id is None:
                skipped += 1
            else:
                sent += 1
        note = f" ({skipped} had been sent again already)" if skipped else ""
        self.message_user(request, f"Sent {sent} jobs again{note}.", messages.SUCCESS)


@admin.register(ScheduledRun)
class ScheduledRunAdmin(ReadOnlyAdmin):
    staff_resource = "scheduled_run"
    list_display = ("job", "slot", "started_at", "finished_at", "outcome", "duplicates")
    ordering = ("-started_at", "-id")
    fields = list_display
    readonly_fields = list_display
