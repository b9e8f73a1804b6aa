"""Background work on usage's tables: pruning (a1zap/celery.py's beat schedule) and usage
alerts (usage/alerts.py)."""

import datetime as dt

from celery import shared_task

from jobs.enqueue import enqueue_now
from jobs.recorded import RecordedTask
from jobs.services import scheduled_run_daily
from usage import alerts
from usage.services import usage_event_ids_prune


@shared_task(base=RecordedTask, name="usage.prune_usage_event_ids")
def prune_usage_event_ids() -> str | None:
    """Forget event ids past the ingestion window, once per day however often it is sent."""

    def prune() -> str:
        deleted, cutoff = usage_event_ids_prune()
        return f"deleted {deleted} event ids older than {cutoff:%Y-%m-%d %H:%M} UTC"

    return scheduled_run_daily(job="prune_usage_event_ids", work=prune)


@shared_task(base=RecordedTask, name="usage.alerts_notify")
def usage_alerts_notify(*, owner_id: str) -> str:
    """Write the webhook of each of the owner's usage alerts not yet told."""
    return f"{alerts.usage_alerts_notify(owner_id=owner_id)} alerts told"


@shared_task(base=RecordedTask, name="usage.alert_email")
def usage_alert_email(*, alert_id: int) -> str:
    """Email the owner about one usage alert (retried with backoff if the mail server fails)."""
    return alerts.usage_alert_email(alert_id=alert_id)


@shared_task(base=RecordedTask, name="usage.hard_cap_alert")
def usage_hard_cap_alert(*, agent_id: str, month: str) -> str:
    """Record that a hard cap refused the agent's owner's messages this month (once)."""
    owner = alerts.usage_hard_cap_record(agent_id=agent_id, month=dt.date.fromisoformat(month))
    return f"alert for {owner}" if owner else "already alerted"


@shared_task(base=RecordedTask, name="usage.alerts_sweep")
def usage_alerts_sweep() -> str:
    """Queue the alerts whose webhook or email a lost job left unsent."""
    owners, emails = alerts.usage_alerts_unsent()
    for owner_id in owners:
        enqueue_now(usage_alerts_notify, owner_id=owner_id)
    for alert_id in emails:
        enqueue_now(usage_alert_email, alert_id=alert_id)
    return f"{len(owners)} owners and {len(emails)} emails queued"
