"""Scheduled work on accounts' tables (a1zap/celery.py's beat schedule)."""

from celery import shared_task

from accounts.services import webhook_messages_prune
from jobs.recorded import RecordedTask
from jobs.services import scheduled_run_daily


@shared_task(base=RecordedTask, name="accounts.prune_webhook_messages")
def prune_webhook_messages() -> str | None:
    """Forget old Stack Auth webhook message ids, once per day however often it is sent."""

    def prune() -> str:
        deleted, cutoff = webhook_messages_prune()
        return f"deleted {deleted} message ids received before {cutoff:%Y-%m-%d %H:%M} UTC"

    return scheduled_run_daily(job="prune_webhook_messages", work=prune)
