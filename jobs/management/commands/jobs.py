from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from jobs.models import FailedJob, ScheduledRun
from jobs.queue_status import BrokerUnreachable, queued_counts, worker_report

FAILED_SHOWN = 20
RUNS_SHOWN = 10


class Command(BaseCommand):
    help = (
        "Show background work: messages queued in the broker, what each worker runs now and "
        "holds for a later retry, the jobs that failed for good (retry them in the admin), "
        "and the last runs of scheduled jobs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout", type=float, default=1.0, help="Seconds to wait for workers to answer."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._queued()
        self._workers(options["timeout"])
        self._failed()
        self._scheduled_runs()

    def _queued(self) -> None:
        try:
            counts = queued_counts()
        except BrokerUnreachable as error:
            self.stdout.write(f"queued: unknown, the broker (CELERY_BROKER_URL) is unreachable: "
                              f"{error}")  # fmt: skip
            return
        total = sum(counts.values())
        each = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
        self.stdout.write(f"queued: {total} ({each}) at {_safe(settings)}")

    def _workers(self, timeout: float) -> None:
        try:
            report = worker_report(timeout=timeout)
        except BrokerUnreachable:
            self.stdout.write("running: unknown, the broker is unreachable")
            return
        if not report.answered:
            self.stdout.write(
                f"running: no worker answered within {timeout:g} s (none is running: "
                "`make worker` starts one)"
            )
            return
        self.stdout.write(
            f"running: {len(report.running)} on {len(report.answered)} workers "
            f"({', '.join(report.answered)}); {len(report.waiting)} waiting to retry"
        )
        for task in report.running:
            self.stdout.write(f"  {task['worker']}  {task.get('name')}  {task.get('kwargs')}")
        for task in report.waiting:
            self.stdout.write(
                f"  {task['worker']}  {task.get('name')}  retry at {task.get('eta')}  "
                f"{task.get('kwargs')}"
            )

    def _failed(self) -> None:
        waiting = FailedJob.objects.filter(retried_at__isnull=True)
        count = waiting.count()
        self.stdout.write(f"failed: {count} not retried (admin: Background jobs > Failed jobs)")
        for job in waiting.order_by("-failed_at", "-id")[:FAILED_SHOWN]:
            error = job.error if len(job.error) <= 100 else job.error[:99] + "…"
            self.stdout.write(
                f"  #{job.pk}  {job.failed_at:%Y-%m-%d %H:%M}  {job.task_name}  {job.kwargs}  "
                f"{error}"
            )
        if count > FAILED_SHOWN:
            self.stdout.write(f"  … and {count - FAILED_SHOWN} more")

    def _scheduled_runs(self) -> None:
        runs = ScheduledRun.objects.order_by("-started_at", "-id")[:RUNS_SHOWN]
        self.stdout.write(f"scheduled runs (last {RUNS_SHOWN}):")
        for run in runs:
            state = f"finished {run.finished_at:%H:%M:%S}" if run.finished_at else "unfinished"
            self.stdout.write(
                f"  {run.job}  {run.slot}  started {run.started_at:%Y-%m-%d %H:%M:%S}  {state}  "
                f"{run.outcome or ''}"
            )


def _safe(config: Any) -> str:
    """The broker URL without its password."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(config.CELERY_BROKER_URL))
