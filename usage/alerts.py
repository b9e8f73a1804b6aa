"""Usage alerts: an owner is told, once per month and threshold, that their messages reached a
share of the plan's included messages, and when a hard cap first refused one.

Which statement crosses a threshold is decided where the counter moves (INGEST_SQL in
`usage.services`), which writes the `usage_alerts` row; this module sends what the rows say:
the `usage.threshold_reached` webhook (an outbox row written in the alert's own transaction,
`notified_at`), then the email (`emailed_at`), each from a job queued on commit, and a sweep
for the jobs a lost message or a dead process left unsent.
"""

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from agents.selectors import agent_owner_subquery
from billing.rules import plan_of_user_sql
from notifications.email import owner_email_send
from notifications.events import event_emit
from notifications.models import NotificationSettings
from usage.models import UsageAlert, UsageAlertKind

logger = logging.getLogger(__name__)

# The sweep leaves an alert this long to the job queued for it.
SWEEP_AFTER = dt.timedelta(minutes=1)


def usage_alerts_notify_on_commit(*, owner_id: str) -> None:
    """Queue the owner's unsent alerts once the caller's transaction commits (at once in
    autocommit, where the ingestion statement has already committed)."""
    from jobs.enqueue import enqueue_on_commit
    from usage.tasks import usage_alerts_notify

    enqueue_on_commit(usage_alerts_notify, owner_id=owner_id)


def _month_of(events: Sequence[Any]) -> dt.date:
    latest = max(event.occurred_at for event in events).astimezone(dt.UTC)
    return latest.date().replace(day=1)


def usage_hard_cap_reached(*, agent_id: Any, events: Sequence[Any]) -> None:
    """A hard cap refused the events: queue the month's `hard_cap` alert unless it exists.

    The refusal rolls back the caller's transaction (the message is not stored), so the alert
    is written by a job of its own, not here; the read keeps a client that keeps sending
    past the cap from queuing a job per request."""
    from jobs.enqueue import enqueue_now
    from usage.tasks import usage_hard_cap_alert

    month = _month_of(events)
    owner = agent_owner_subquery(agent_id)
    if UsageAlert.objects.filter(user_id=owner, month=month, kind=UsageAlertKind.HARD_CAP).exists():
        return
    enqueue_now(usage_hard_cap_alert, agent_id=str(agent_id), month=month.isoformat())


HARD_CAP_SQL = f"""
INSERT INTO usage_alerts (user_id, month, kind, percent, message_count, included_messages)
SELECT a.owner_id, %(month)s, 'hard_cap', 100, COALESCE(m.message_count, 0),
       GREATEST(COALESCE(p.max_messages_per_month, 0), 0)
FROM a1_agents a
{plan_of_user_sql("a.owner_id")}
LEFT JOIN user_monthly_usage m ON m.user_id = a.owner_id AND m.month = %(month)s
WHERE a.id = %(agent)s
ON CONFLICT DO NOTHING
RETURNING user_id
"""  # noqa: S608 (constants only; values are parameters)


def usage_hard_cap_record(*, agent_id: Any, month: dt.date) -> str | None:
    """Write the month's `hard_cap` alert for the agent's owner (once); return the owner if
    this call wrote it, and queue its webhook."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(HARD_CAP_SQL, {"agent": agent_id, "month": month})
        row = cursor.fetchone()
        if row is None:
            return None
        usage_alerts_notify_on_commit(owner_id=row[0])
    return str(row[0])


def usage_alert_event_data(alert: UsageAlert) -> dict[str, Any]:
    """What a usage.threshold_reached webhook says."""
    return {
        "owner_id": alert.user_id,
        "month": alert.month,
        "kind": alert.kind,
        "percent": alert.percent,
        "messages": alert.message_count,
        "included_messages": alert.included_messages,
    }


def usage_alerts_notify(*, owner_id: str) -> int:
    """Write the webhook event of each of the owner's alerts not yet told (each once, even
    when two jobs run at once), and queue their emails; return how many."""
    from jobs.enqueue import enqueue_on_commit
    from usage.tasks import usage_alert_email

    with transaction.atomic():
        alerts = list(
            UsageAlert.objects.filter(user_id=owner_id, notified_at__isnull=True)
            .order_by("id")
            .select_for_update(skip_locked=True)
        )
        for alert in alerts:
            event_emit(
                owner_id=owner_id,
                event_type="usage.threshold_reached",
                data=usage_alert_event_data(alert),
            )
            enqueue_on_commit(usage_alert_email, alert_id=alert.pk)
        UsageAlert.objects.filter(pk__in=[alert.pk for alert in alerts]).update(
            notified_at=timezone.now()
        )
    return len(alerts)


def _email_text(alert: UsageAlert) -> tuple[str, str]:
    month = f"{alert.month:%B %Y}"
    if alert.kind == UsageAlertKind.HARD_CAP:
        subject = f"A1Zap: your agents reached this month's message limit ({month})"
        body = (
            f"Your plan's limit of {alert.included_messages} messages for {month} is reached: "
            "your agents' new messages are refused until the month ends or you upgrade."
        )
    else:
        subject = f"A1Zap: {alert.percent}% of this month's messages used ({month})"
        body = (
            f"Your agents have used {alert.message_count} of the {alert.included_messages} "
            f"messages your plan includes for {month} ({alert.percent}%)."
        )
    footer = "\n\nYou can turn these emails off or choose their thresholds in your settings."
    return subject, body + footer


def usage_alert_email(*, alert_id: int) -> str:
    """Email the owner about the alert, once, unless they turned usage emails off."""
    with transaction.atomic():
        alert = (
            UsageAlert.objects.filter(
                pk=alert_id, emailed_at__isnull=True, notified_at__isnull=False
            )
            .select_for_update(skip_locked=True)
            .first()
        )
        if alert is None:
            return "nothing to do"
        choice = NotificationSettings.objects.filter(owner_id=alert.user_id).first()
        outcome = "turned off"
        if choice is None or choice.usage_email_enabled:
            subject, body = _email_text(alert)
            address = owner_email_send(owner_id=alert.user_id, subject=subject, body=body)
            outcome = "sent" if address else "no address"
        alert.emailed_at = timezone.now()
        alert.save(update_fields=["emailed_at"])
    return outcome


def usage_alerts_unsent() -> tuple[list[str], list[int]]:
    """Owners with alerts whose webhook is not written yet, and alerts whose email is not
    sent, that their jobs should have handled by now."""
    before = timezone.now() - SWEEP_AFTER
    unsent = UsageAlert.objects.filter(created_at__lte=before).filter(
        Q(notified_at__isnull=True) | Q(emailed_at__isnull=True)
    )
    owners = sorted(
        set(unsent.filter(notified_at__isnull=True).values_list("user_id", flat=True)[:1000])
    )
    emails = list(
        unsent.filter(notified_at__lte=before, emailed_at__isnull=True).values_list(
            "pk", flat=True
        )[:1000]
    )
    return owners, emails
