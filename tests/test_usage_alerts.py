"""Usage alerts: each threshold of the month's included messages fires exactly once per owner
and month, decided by the statement that moves the counter, however many requests race
across it; a hard cap's first refusal is told too; owners get a signed webhook and an email
(unless they turned it off) and choose their thresholds."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import StackUser
from agents.services import agent_create
from conversations.services import conversation_open, message_post
from notifications.models import NotificationSettings, WebhookEvent
from tests.background import wait_until
from tests.concurrency import race
from tests.test_webhooks import receiver, register, verified
from tests.webhook_receiver import WebhookReceiver
from usage import alerts
from usage.errors import QuotaExceeded
from usage.models import UsageAlert, UserMonthlyUsage

pytestmark = pytest.mark.django_db
__all__ = ["receiver"]
URL = "/api/v1/usage/events/"
SETTINGS = "/api/v1/notifications/settings/"
Headers = Callable[..., dict[str, str]]


def this_month() -> Any:
    return timezone.now().date().replace(day=1)


def app_of(owner: str = "user_1", handle: str = "alert_bot") -> tuple[Any, dict[str, str]]:
    agent, key = agent_create(owner_id=owner, name="Bot", handle=handle, agent_type="personal")
    return agent, {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def used(owner: str, messages: int) -> None:
    """The owner's month already counts `messages` (the free plan includes 1000)."""
    UserMonthlyUsage.objects.update_or_create(
        user_id=owner, month=this_month(), defaults={"message_count": messages}
    )


def send(headers: dict[str, str], event_id: str, messages: int = 1) -> int:
    answer = APIClient().post(URL, {"id": event_id, "messages": messages}, format="json", **headers)
    return int(answer.status_code)


def fired(owner: str = "user_1") -> list[tuple[str, int, int]]:
    return list(
        UsageAlert.objects.filter(user_id=owner)
        .order_by("kind", "percent")
        .values_list("kind", "percent", "message_count")
    )


def test_crossing_a_threshold_fires_it_once_with_the_count_that_crossed_it(
    django_capture_on_commit_callbacks: Any,
) -> None:
    _agent, headers = app_of()
    used("user_1", 498)
    with django_capture_on_commit_callbacks() as callbacks:
        assert send(headers, "a") == 202  # 499: below
        assert fired() == []
        assert send(headers, "b") == 202  # 500: crosses 50 %
        assert send(headers, "c") == 202  # 501: past it already
    assert fired() == [("threshold", 50, 500)]
    assert len(callbacks) == 1  # one notify job, for the statement that crossed it


def test_one_batch_across_two_thresholds_fires_both() -> None:
    _agent, headers = app_of()
    used("user_1", 400)
    assert send(headers, "big", messages=450) == 202  # 400 -> 850
    assert fired() == [("threshold", 50, 850), ("threshold", 80, 850)]


def test_no_threshold_fires_twice_in_a_month_even_if_the_counter_goes_back() -> None:
    _agent, headers = app_of()
    used("user_1", 499)
    send(headers, "a")
    used("user_1", 499)  # staff corrected the count, say
    send(headers, "b")
    assert fired() == [("threshold", 50, 500)]


def test_a_message_in_a_conversation_fires_in_its_transaction_and_a_rollback_fires_nothing() -> (
    None
):
    agent, _headers = app_of()
    conversation, _ = conversation_open(agent_id=agent.pk, channel="web")
    used("user_1", 799)

    def failing_request() -> None:
        with transaction.atomic():
            message_post(conversation=conversation, role="user", content="Hi")
            raise RuntimeError("the request fails after the message was counted")

    with pytest.raises(RuntimeError):
        failing_request()
    assert fired() == []
    message_post(conversation=conversation, role="user", content="Hi")
    assert fired() == [("threshold", 80, 800)]


def test_an_owner_chooses_thresholds_and_bad_choices_are_refused(
    client: Client, owner_headers: Headers
) -> None:
    assert client.get(SETTINGS, **owner_headers()).json() == {
        "usage_email_enabled": True,
        "usage_thresholds": [50, 80, 100],
    }
    for bad in (
        {"usage_thresholds": [5]},
        {"usage_thresholds": [101]},
        {"usage_thresholds": [10, 20, 30, 40, 50, 60]},
        {"usage_thresholds": "80"},
        {"usage_email_enabled": "maybe"},
        {"thresholds": [80]},
    ):
        answer = client.patch(SETTINGS, bad, content_type="application/json", **owner_headers())
        assert answer.status_code == 400, bad
        assert answer.json()["code"] == "validation_error"
    assert not NotificationSettings.objects.exists()
    changed = client.patch(
        SETTINGS,
        {"usage_thresholds": [90, 25, 90], "usage_email_enabled": False},
        content_type="application/json",
        **owner_headers(),
    )
    assert changed.json() == {"usage_email_enabled": False, "usage_thresholds": [25, 90]}
    assert client.get(SETTINGS, **owner_headers("user_2")).json()["usage_thresholds"] == [
        50,
        80,
        100,
    ]

    _agent, headers = app_of()
    used("user_1", 249)
    send(headers, "a")  # 250: 25 %
    used("user_1", 499)
    send(headers, "b")  # 500: not chosen
    assert fired() == [("threshold", 25, 250)]


def test_the_settings_need_an_owner(client: Client) -> None:
    assert client.get(SETTINGS).status_code in (401, 403)


def test_a_hard_cap_tells_its_first_refusal_once(django_capture_on_commit_callbacks: Any) -> None:
    agent, headers = app_of()
    used("user_1", 1000)
    assert send(headers, "over-1") == 429
    assert fired() == []  # the job writes it (the refusal rolled everything back)
    with django_capture_on_commit_callbacks(execute=False):
        assert alerts.usage_hard_cap_record(agent_id=agent.pk, month=this_month()) == "user_1"
        assert alerts.usage_hard_cap_record(agent_id=agent.pk, month=this_month()) is None
    assert fired() == [("hard_cap", 100, 1000)]


def test_a_refusal_inside_a_conversation_still_queues_the_hard_cap_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent, _headers = app_of()
    conversation, _ = conversation_open(agent_id=agent.pk, channel="web")
    used("user_1", 1000)
    queued: list[dict[str, Any]] = []

    def enqueue_now(task: Any, **kwargs: Any) -> bool:
        queued.append(kwargs)
        return True

    monkeypatch.setattr("jobs.enqueue.enqueue_now", enqueue_now)
    with pytest.raises(QuotaExceeded):
        message_post(conversation=conversation, role="user", content="Hi")
    assert queued == [{"agent_id": str(agent.pk), "month": this_month().isoformat()}]
    alerts.usage_hard_cap_record(agent_id=agent.pk, month=this_month())
    queued.clear()
    with pytest.raises(QuotaExceeded):
        message_post(conversation=conversation, role="user", content="Hi")
    assert queued == []  # already told: a client hammering past the cap queues nothing


def test_the_sweep_finds_alerts_whose_jobs_were_lost() -> None:
    old = timezone.now() - alerts.SWEEP_AFTER * 2
    lost = UsageAlert.objects.create(
        user_id="user_1", month=this_month(), kind="threshold", percent=50,
        message_count=500, included_messages=1000,
    )  # fmt: skip
    UsageAlert.objects.filter(pk=lost.pk).update(created_at=old)
    unmailed = UsageAlert.objects.create(
        user_id="user_2", month=this_month(), kind="threshold", percent=80,
        message_count=800, included_messages=1000, notified_at=old,
    )  # fmt: skip
    UsageAlert.objects.filter(pk=unmailed.pk).update(created_at=old)
    UsageAlert.objects.create(
        user_id="user_3",
        month=this_month(),
        kind="threshold",
        percent=80,
        message_count=800,
        included_messages=1000,
    )  # fmt: skip  (just written: its job has a minute)
    assert alerts.usage_alerts_unsent() == (["user_1"], [unmailed.pk])


def test_an_alert_is_a_signed_webhook_and_an_email_through_a_real_worker(
    receiver: WebhookReceiver, worker: Any
) -> None:
    StackUser.objects.create(id="user_1", email="owner@example.com")
    _endpoint, secret = register(receiver, event_types=["usage.threshold_reached"])
    _agent, headers = app_of()
    used("user_1", 799)
    send(headers, "a")
    wait_until(lambda: len(receiver.received) >= 1, "the alert's webhook")
    body = verified(secret, receiver.received[0])
    assert body["type"] == "usage.threshold_reached"
    assert body["data"] == {
        "owner_id": "user_1",
        "month": this_month().isoformat(),
        "kind": "threshold",
        "percent": 80,
        "messages": 800,
        "included_messages": 1000,
    }
    wait_until(lambda: len(mail.outbox) >= 1, "the alert's email")
    [email] = mail.outbox
    assert email.to == ["owner@example.com"]
    assert "80%" in email.subject
    wait_until(
        lambda: UsageAlert.objects.filter(emailed_at__isnull=False).count() == 1, "marked sent"
    )


def test_an_owner_who_turned_emails_off_gets_the_webhook_only() -> None:
    StackUser.objects.create(id="user_1", email="owner@example.com")
    NotificationSettings.objects.create(owner_id="user_1", usage_email_enabled=False)
    alert = UsageAlert.objects.create(
        user_id="user_1", month=this_month(), kind="threshold", percent=80,
        message_count=800, included_messages=1000,
    )  # fmt: skip
    assert alerts.usage_alerts_notify(owner_id="user_1") == 1
    assert alerts.usage_alerts_notify(owner_id="user_1") == 0  # told once
    assert alerts.usage_alert_email(alert_id=alert.pk) == "turned off"
    assert alerts.usage_alert_email(alert_id=alert.pk) == "nothing to do"
    assert mail.outbox == []
    assert WebhookEvent.objects.count() == 0  # no endpoint: the event costs nothing


# The race needs committed data and threads with their own connections.


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_200_concurrent_posts_crossing_80_percent_fire_exactly_one_alert() -> None:
    _agent, headers = app_of(owner="racer", handle="race_alerts")
    used("racer", 700)

    def sender(thread: int) -> Callable[[], list[int]]:
        # 50 threads (each its own database connection), 4 posts each: 200 posts at once.
        return lambda: [send(headers, f"r{thread}-{n}") for n in range(4)]

    statuses = [status for batch in race([sender(n) for n in range(50)]) for status in batch]

    assert statuses == [202] * 200
    assert UserMonthlyUsage.objects.get(user_id="racer").message_count == 900
    assert fired("racer") == [("threshold", 80, 800)]


def test_support_staff_read_usage_alerts_and_owners_choices_found_by_owner_id() -> None:
    from tests.test_admin_agents import staff_client

    for owner, percent in (("user_1", 50), ("user_2", 80)):
        UsageAlert.objects.create(
            user_id=owner, month=this_month(), kind="threshold", percent=percent,
            message_count=percent * 10, included_messages=1000,
        )  # fmt: skip
    NotificationSettings.objects.create(owner_id="user_2", usage_thresholds=[90])
    client, _ = staff_client("support")
    listing = client.get("/admin/usage/usagealert/?q=user_2")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "user_2" in text
    assert "user_1" not in text
    assert client.get("/admin/usage/usagealert/add/").status_code == 403
    choices = client.get("/admin/notifications/notificationsettings/?q=user_2")
    assert choices.status_code == 200
    assert "90" in choices.content.decode()


def test_a_teams_alert_is_emailed_to_each_of_its_admins_and_nobody_else() -> None:
    from tests.teams_world import member_add, team_make

    team_make("team-alerts")
    member_add("team-alerts", "boss", ["team_admin"])
    member_add("team-alerts", "second", ["a1zap:admin"])
    member_add("team-alerts", "worker")  # a plain member: the editor role
    for user_id in ("boss", "second", "worker"):
        StackUser.objects.create(id=user_id, email=f"{user_id}@example.com")
    alert = UsageAlert.objects.create(
        user_id="team-alerts", month=this_month(), kind="threshold", percent=80,
        message_count=800, included_messages=1000,
    )  # fmt: skip
    alerts.usage_alerts_notify(owner_id="team-alerts")
    assert alerts.usage_alert_email(alert_id=alert.pk) == "sent"
    assert sorted(email.to[0] for email in mail.outbox) == [
        "boss@example.com",
        "second@example.com",
    ]


def test_a_teams_admins_are_all_emailed_however_many_members_it_has() -> None:
    """The console shows a team's first 500 members; the alert's addresses are not a page."""
    from accounts.selectors import account_emails
    from tests.teams_world import many_members, team_make

    team_make("team-big")
    admins = ["zz_admin_1", "zz_admin_2"]  # sorted after the 500 first members
    many_members("team-big", 510, admins=admins)
    StackUser.objects.bulk_create(
        StackUser(id=user_id, email=f"{user_id}@example.com") for user_id in [*admins, "m0001"]
    )

    assert account_emails("team-big") == ["zz_admin_1@example.com", "zz_admin_2@example.com"]
