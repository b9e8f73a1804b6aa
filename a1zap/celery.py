"""The Celery application: background work on a Redis broker (CELERY_BROKER_URL).

Tasks live in each owning app's `tasks.py` and are found by autodiscovery; they are written
to be idempotent (a key or a claim derived from the row they work on), because a task is
acknowledged only once it has run (`acks_late`) and a worker that dies mid-task has it
delivered again. Every task is a `jobs.recorded.RecordedTask`: one that exhausts its retries
is written to `failed_jobs`, where staff see it and can retry it. The schedule (Celery beat)
is `BEAT_SCHEDULE` below, in code so that it is reviewed like code. Running two beats by
mistake does no harm: each scheduled job runs once per day or month however many times it
is sent (`jobs.services.scheduled_run_once`), and the sweeps claim each row they work on.

    celery -A a1zap worker      # `make worker`
    celery -A a1zap beat        # `make beat`
"""

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a1zap.settings.base")

app = Celery("a1zap", task_cls="jobs.recorded:RecordedTask")
# Every CELERY_* Django setting (a1zap/settings/base.py) configures the app.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def _drop_unusable_connections(**kwargs: Any) -> None:
    """After each task, as after each request: close a database connection that is broken or
    older than CONN_MAX_AGE (the connection is otherwise kept: CELERY_DB_REUSE_MAX)."""
    from django.db import close_old_connections

    close_old_connections()


# Times are UTC (CELERY_TIMEZONE).
BEAT_SCHEDULE = {
    # Deleted users' Stripe cancellations that are due again (their task gave up, or its
    # message was lost): what `manage.py retry_stripe_cancellations` runs.
    "retry-stripe-cancellations": {
        "task": "invoicing.stripe_cancellations_sweep",
        "schedule": 5 * 60.0,
    },
    # Stripe webhook events stored but not applied, whose task was lost or gave up.
    "requeue-stripe-events": {"task": "invoicing.stripe_events_sweep", "schedule": 5 * 60.0},
    # Webhook deliveries that are due and whose message was lost (or never sent).
    "send-due-webhooks": {"task": "notifications.webhook_deliveries_sweep", "schedule": 60.0},
    # Usage alerts whose webhook or email job was lost.
    "send-usage-alerts": {"task": "usage.alerts_sweep", "schedule": 60.0},
    "prune-usage-event-ids": {
        "task": "usage.prune_usage_event_ids",
        "schedule": crontab(hour=3, minute=15),
    },
    "prune-webhook-events": {
        "task": "notifications.prune_webhook_events",
        "schedule": crontab(hour=3, minute=45),
    },
    "prune-webhook-messages": {
        "task": "accounts.prune_webhook_messages",
        "schedule": crontab(hour=3, minute=30),
    },
    # Last month's close, on the 1st (as the issue asks; usage may still arrive for up to 35
    # days after it happened, and a closed month is not billed again: see README).
    "close-billing-period": {
        "task": "invoicing.close_previous_month",
        "schedule": crontab(day_of_month=1, hour=2, minute=0),
    },
}
app.conf.beat_schedule = BEAT_SCHEDULE
