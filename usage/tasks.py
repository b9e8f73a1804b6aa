"""Scheduled work on usage's tables (a1zap/celery.py's beat schedule)."""

from celery import shared_task

from jobs.recorded import RecordedTask
from jobs.services import scheduled_run_daily
from usage.services import usage_event_ids_prune


@shared_task(base=RecordedTask, name="usage.prune_usage_event_ids")
def prune_usage_event_ids() -> str | None:
    """Forget event ids past the ingestion window, once per day however often it is sent."""

    def prune() -> str:
        deleted, cutoff = usage_event_ids_prune()
        return f"deleted {deleted} event ids older than {cutoff:%Y-%m-%d %H:%M} UTC"

    return scheduled_run_daily(job="prune_usage_event_ids", work=prune)
