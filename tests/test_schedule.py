"""The schedule (Celery beat, in a1zap/celery.py) and what keeps it harmless: each scheduled
job runs once per day or month however many beats send it."""

import datetime as dt
from typing import Any

import pytest
from celery.beat import Scheduler
from django.utils import timezone

from a1zap.celery import BEAT_SCHEDULE, app
from billing.models import BillingEvent, UserSubscription
from core.months import current_month, format_month
from jobs.models import ScheduledRun
from jobs.services import scheduled_run_once
from tests.background import wait_until
from tests.factories import AgentFactory, messages_ingested
from tests.stripe_fake import StripeFake
from usage.models import UsageEventId


def two_beats_send(entry_name: str) -> None:
    """What two beat processes do when an entry falls due: each sends its task."""
    for _ in range(2):
        beat = Scheduler(app, lazy=False)
        entry = beat.schedule[entry_name]
        entry.last_run_at = timezone.now() - dt.timedelta(days=40)  # due for both
        assert entry.is_due().is_due
        beat.apply_entry(entry)
        beat.close()


def handled(job: str, sends: int) -> list[ScheduledRun] | None:
    """The job's runs once `sends` messages have been handled (each run or skipped)."""
    runs = list(ScheduledRun.objects.filter(job=job).order_by("slot"))
    done = sum(1 + run.duplicates for run in runs if run.finished_at)
    return runs if done == sends else None


@pytest.mark.django_db
def test_every_scheduled_job_is_a_registered_task() -> None:
    app.loader.import_default_modules()

    assert {entry["task"] for entry in BEAT_SCHEDULE.values()} <= set(app.tasks)
    assert {entry["task"] for entry in BEAT_SCHEDULE.values()} == {
        "usage.prune_usage_event_ids", "accounts.prune_webhook_messages",
        "invoicing.close_previous_month", "invoicing.stripe_cancellations_sweep",
        "invoicing.stripe_events_sweep", "notifications.webhook_deliveries_sweep",
        "usage.alerts_sweep", "notifications.prune_webhook_events",
    }  # fmt: skip


def test_two_beats_the_daily_prune_runs_once_per_day(worker: Any) -> None:
    agent = AgentFactory.create()
    old = timezone.now() - dt.timedelta(days=40)
    UsageEventId.objects.create(agent=agent, event_id="old", occurred_at=old)
    UsageEventId.objects.create(agent=agent, event_id="new", occurred_at=timezone.now())

    two_beats_send("prune-usage-event-ids")
    every = wait_until(lambda: handled("prune_usage_event_ids", 2), "both messages handled")

    # One run per day: the second send found the day's run done (or, had the two sends fallen
    # either side of midnight UTC, each day has its one run).
    assert len(every) == len({run.slot for run in every})
    assert all(run.finished_at for run in every)
    assert "deleted 1 event ids" in (every[0].outcome or "")
    assert list(UsageEventId.objects.values_list("event_id", flat=True)) == ["new"]


@pytest.mark.django_db
def test_a_run_that_died_unfinished_runs_again_and_a_finished_one_does_not() -> None:
    calls: list[str] = []

    def dies() -> str:
        calls.append("died")
        raise RuntimeError("worker lost")

    def works() -> str:
        calls.append("ran")
        return "done"

    with pytest.raises(RuntimeError):
        scheduled_run_once(job="job", slot="2026-12-01", work=dies)
    first = scheduled_run_once(job="job", slot="2026-12-01", work=works)
    second = scheduled_run_once(job="job", slot="2026-12-01", work=works)
    other_day = scheduled_run_once(job="job", slot="2026-12-02", work=works)

    assert (first, second, other_day) == ("done", None, "done")
    assert calls == ["died", "ran", "ran"]
    run = ScheduledRun.objects.get(job="job", slot="2026-12-01")
    assert (run.outcome, run.duplicates) == ("done", 1)


def test_two_beats_the_monthly_close_runs_once_and_sends_each_invoice_item_once(
    worker: Any, fake: StripeFake
) -> None:
    last_month = (current_month() - dt.timedelta(days=1)).replace(day=1)
    customer = fake.customer()["id"]
    UserSubscription.objects.create(user_id="user_a", plan_id="pro", stripe_customer_id=customer)
    agent = AgentFactory.create(owner_id="user_a")
    messages_ingested(agent, day=last_month + dt.timedelta(days=13), messages=55_500)

    two_beats_send("close-billing-period")
    (run,) = wait_until(lambda: handled("close_billing_period", 2), "both sends handled")
    wait_until(
        lambda: BillingEvent.objects.filter(metadata__has_key="stripe_invoice_item_id").exists(),
        "the invoice item",
    )

    assert (run.slot, run.duplicates) == (format_month(last_month), 1)
    assert BillingEvent.objects.filter(event_type="usage_period_closed").count() == 1
    (item,) = fake.created("invoiceitem")
    assert (item["customer"], item["amount"]) == (customer, 1100)
