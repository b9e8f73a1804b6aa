"""Background jobs: a task that exhausts its retries is recorded where staff see it, support
reads the list, the admin role sends a job again, and `manage.py jobs` shows queued, running
and failed work (and says so in one line when the broker or the workers do not answer)."""

import io
from typing import Any

import pytest
from celery import shared_task
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client, override_settings
from kombu.exceptions import OperationalError

from jobs.enqueue import enqueue_now
from jobs.models import FailedJob
from jobs.recorded import RecordedTask
from jobs.services import failed_job_record
from tests.background import wait_until

ATTEMPTS: list[int] = []


@shared_task(bind=True, base=RecordedTask, name="tests.always_failing")
def always_failing(self: RecordedTask, *, label: str) -> None:
    """A job whose outside service never answers."""
    ATTEMPTS.append(self.request.retries)
    self.retry_later(RuntimeError(f"outside service down for {label}"))


BACKENDS: list[int] = []


@shared_task(base=RecordedTask, name="tests.which_backend")
def which_backend() -> None:
    """Note which PostgreSQL backend (connection) ran this task."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        BACKENDS.append(cursor.fetchone()[0])


def staff_client(role: str) -> Client:
    user = User.objects.create_user(role, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def jobs_command(*args: str) -> str:
    out = io.StringIO()
    call_command("jobs", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_task_that_exhausts_its_retries_is_recorded_once_with_its_error(
    worker: Any, settings: Any
) -> None:
    ATTEMPTS.clear()

    always_failing.delay(label="alpha")
    job = wait_until(lambda: FailedJob.objects.first(), "the failed job")

    assert ATTEMPTS == [0, 1, 2, 3]  # the first try and JOBS_MAX_RETRIES retries
    assert (job.task_name, job.args, job.kwargs) == ("tests.always_failing", [], {"label": "alpha"})
    assert job.error == "RuntimeError: outside service down for alpha"
    assert "RuntimeError" in job.traceback
    assert job.retries == settings.JOBS_MAX_RETRIES
    assert job.retried_at is None


@pytest.mark.django_db
def test_a_failure_delivered_twice_is_recorded_once() -> None:
    recorded = [
        failed_job_record(
            task_id="t-1",
            task_name="x",
            args=[],
            kwargs={"a": 1},
            error="E: e",
            traceback="",
            retries=3,
        )
        for _ in range(2)
    ]

    assert recorded == [True, False]
    assert FailedJob.objects.count() == 1


@pytest.mark.django_db
def test_support_sees_failed_jobs_and_their_errors_but_cannot_retry_them() -> None:
    job = FailedJob.objects.create(task_id="t-2", task_name="invoicing.stripe_cancellation_send",
                                   kwargs={"stripe_subscription_id": "sub_1"},
                                   error="StripeCancellationPending: APIError 503")  # fmt: skip
    client = staff_client("support")

    listing = client.get("/admin/jobs/failedjob/")
    page = client.get(f"/admin/jobs/failedjob/{job.pk}/change/")
    attempt = client.post(
        "/admin/jobs/failedjob/", {"action": "retry_jobs", "_selected_action": [job.pk]}
    )

    assert listing.status_code == page.status_code == 200
    assert "StripeCancellationPending: APIError 503" in listing.content.decode()
    assert "retry_jobs" not in listing.content.decode()
    assert attempt.status_code == 200  # Django's "no action selected" page, nothing done
    job.refresh_from_db()
    assert job.retried_at is None


@pytest.mark.django_db
def test_the_admin_role_sends_a_failed_job_again_once() -> None:
    from a1zap.celery import app
    from jobs.queue_status import queued_counts

    app.control.purge()
    job = FailedJob.objects.create(task_id="t-3", task_name="tests.always_failing",
                                   kwargs={"label": "beta"}, error="RuntimeError: x")  # fmt: skip
    client = staff_client("admin")

    first = client.post(
        "/admin/jobs/failedjob/", {"action": "retry_jobs", "_selected_action": [job.pk]}
    )
    second = client.post(
        "/admin/jobs/failedjob/", {"action": "retry_jobs", "_selected_action": [job.pk]},
        follow=True,
    )  # fmt: skip

    assert first.status_code == 302
    assert "had been sent again already" in second.content.decode()
    job.refresh_from_db()
    assert job.retried_by == "admin"
    assert sum(queued_counts().values()) == 1


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_retrying_while_the_broker_is_down_says_so_and_records_nothing() -> None:
    job = FailedJob.objects.create(task_id="t-4", task_name="tests.always_failing",
                                   kwargs={"label": "gamma"}, error="RuntimeError: x")  # fmt: skip
    from jobs.services import failed_job_retry

    with pytest.raises(OperationalError):
        failed_job_retry(job_id=job.pk, retried_by="admin")
    job.refresh_from_db()
    assert job.retried_at is None


@pytest.mark.django_db
def test_the_jobs_command_shows_queued_and_failed_work_and_that_no_worker_answers() -> None:
    from a1zap.celery import app

    app.control.purge()
    for label in ("one", "two"):
        assert enqueue_now(always_failing, label=label)
    FailedJob.objects.create(task_id="t-5", task_name="invoicing.stripe_cancellation_send",
                             kwargs={"stripe_subscription_id": "sub_9"},
                             error="StripeCancellationPending: APIError 503")  # fmt: skip

    out = jobs_command("--timeout", "0.2")

    assert "queued: 2 (celery 2)" in out
    assert "running: no worker answered within 0.2 s" in out
    assert "failed: 1 not retried" in out
    assert "invoicing.stripe_cancellation_send" in out
    assert "StripeCancellationPending: APIError 503" in out
    app.control.purge()


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_the_jobs_command_says_in_one_line_that_the_broker_is_unreachable() -> None:
    out = jobs_command("--timeout", "0.2")

    assert "queued: unknown, the broker (CELERY_BROKER_URL) is unreachable" in out
    assert "running: unknown, the broker is unreachable" in out
    assert "Traceback" not in out


def test_a_worker_keeps_its_database_connection_from_one_task_to_the_next(worker: Any) -> None:
    BACKENDS.clear()

    for _ in range(3):
        which_backend.delay()
    wait_until(lambda: len(BACKENDS) == 3, "three tasks")

    assert len(set(BACKENDS)) == 1  # not a new PostgreSQL connection per task
