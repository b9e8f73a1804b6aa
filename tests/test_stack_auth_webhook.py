"""Stack Auth's Svix-signed webhooks keep the user mirror current and clean up deleted users."""

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import secrets
import string
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from svix.webhooks import Webhook

from accounts.models import StackAuthWebhookMessage, StackUser
from agents.models import A1Agent
from billing.models import BillingEvent, SubscriptionStatus, UserSubscription
from tests.concurrency import race
from tests.factories import AgentFactory, SubscriptionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_auth")]

URL = "/stack-auth/webhook/"
SECRET = "whsec_" + base64.b64encode(b"stack-auth-webhook-test-secret!!").decode()


@pytest.fixture(autouse=True)
def _webhook_secret(settings: SettingsWrapper) -> None:
    settings.STACK_AUTH_WEBHOOK_SECRET = SECRET


KSUID_EPOCH = 1_400_000_000
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_last_message_at = [dt.datetime.min.replace(tzinfo=dt.UTC)]


def svix_message_id(created_at: dt.datetime | None = None, *, payload: int | None = None) -> str:
    """Return a message id as Svix makes them: `msg_` and a KSUID in base62.

    A KSUID is 4 bytes of seconds since its epoch, then (Svix's millisecond variant) one byte
    of 4 ms steps and 15 random bytes. Ids made one after another without `created_at` are
    4 ms apart or more, as those of messages Stack Auth creates one after another.
    """
    if created_at is None:
        created_at = max(
            dt.datetime.now(dt.UTC), _last_message_at[0] + dt.timedelta(milliseconds=4)
        )
        _last_message_at[0] = created_at
    seconds = int(created_at.timestamp()) - KSUID_EPOCH
    steps = created_at.microsecond // 4000
    rest = secrets.randbits(120) if payload is None else payload
    value = (seconds << 128) | (steps << 120) | rest
    digits = ""
    while value:
        value, digit = divmod(value, 62)
        digits = BASE62[digit] + digits
    return "msg_" + digits.rjust(27, "0")


def signed_headers(
    payload: str,
    *,
    secret: str = SECRET,
    timestamp: dt.datetime | None = None,
    msg_id: str | None = None,
) -> dict[str, Any]:
    """Return the Django test client headers Svix would send with this payload.

    `timestamp` is when this delivery attempt is signed; `msg_id` the message's id, the same
    on every attempt (a new message by default).
    """
    msg_id = msg_id or svix_message_id()
    sent_at = timestamp or dt.datetime.now(dt.UTC)
    return {
        "HTTP_SVIX_ID": msg_id,
        "HTTP_SVIX_TIMESTAMP": str(int(sent_at.timestamp())),
        "HTTP_SVIX_SIGNATURE": Webhook(secret).sign(msg_id, sent_at, payload),
    }


def post_event(client: Client, event: dict[str, Any] | str, **overrides: Any) -> Any:
    """POST an event signed as Svix does; `overrides` are passed to `signed_headers`."""
    payload = event if isinstance(event, str) else json.dumps(event)
    headers = signed_headers(payload, **overrides)
    return client.post(URL, data=payload, content_type="application/json", **headers)


def user_event(kind: str, user_id: str, **data: Any) -> dict[str, Any]:
    return {"type": f"user.{kind}", "data": {"id": user_id, **data}}


# --- user.created / user.updated -------------------------------------------------------------


def test_user_created_adds_the_user_to_the_mirror(client: Client) -> None:
    event = user_event("created", "user_1", primary_email="a@x.io", display_name="Ada")

    response = post_event(client, event)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    user = StackUser.objects.get(pk="user_1")
    assert (user.email, user.display_name, user.deleted_at) == ("a@x.io", "Ada", None)


def test_user_updated_changes_email_and_name(client: Client) -> None:
    post_event(client, user_event("created", "user_1", primary_email="a@x.io", display_name="A"))

    response = post_event(
        client, user_event("updated", "user_1", primary_email="b@x.io", display_name=None)
    )

    assert response.status_code == 200
    user = StackUser.objects.get(pk="user_1")
    assert (user.email, user.display_name) == ("b@x.io", None)


def test_user_updated_for_an_unknown_user_creates_them(client: Client) -> None:
    response = post_event(client, user_event("updated", "user_2", primary_email="c@x.io"))

    assert response.status_code == 200
    assert StackUser.objects.get(pk="user_2").email == "c@x.io"


def test_late_user_updated_does_not_bring_back_a_deleted_user(client: Client) -> None:
    post_event(client, user_event("created", "user_1", primary_email="a@x.io"))
    post_event(client, user_event("deleted", "user_1", teams=[]))

    response = post_event(client, user_event("updated", "user_1", primary_email="new@x.io"))

    assert response.status_code == 200
    user = StackUser.objects.get(pk="user_1")
    assert user.deleted_at is not None
    assert user.email == "a@x.io"


# --- duplicates and order ---------------------------------------------------------------------


def email_of(user_id: str) -> str | None:
    return StackUser.objects.get(pk=user_id).email


def test_a_replayed_message_is_applied_once(client: Client) -> None:
    first = user_event("updated", "user_1", primary_email="a@x.io")
    first_id = svix_message_id()
    post_event(client, first, msg_id=first_id)
    post_event(client, user_event("updated", "user_1", primary_email="b@x.io"))

    # Svix delivers the first message again: same id, a fresh timestamp and signature.
    replay = post_event(client, first, msg_id=first_id)

    assert replay.status_code == 200
    assert replay.json() == {"status": "duplicate"}
    assert email_of("user_1") == "b@x.io"


def test_an_older_user_updated_arriving_after_a_newer_one_does_not_overwrite_the_email(
    client: Client,
) -> None:
    now = dt.datetime.now(dt.UTC)
    older_id = svix_message_id(now - dt.timedelta(minutes=30))
    newer_id = svix_message_id(now - dt.timedelta(minutes=1))
    post_event(client, user_event("updated", "user_1", primary_email="new@x.io"), msg_id=newer_id)

    # The older message failed its first attempts and is retried now, signed now.
    late = post_event(
        client, user_event("updated", "user_1", primary_email="old@x.io"), msg_id=older_id
    )

    assert late.status_code == 200
    assert email_of("user_1") == "new@x.io"


def test_a_late_user_created_does_not_undo_a_user_updated(client: Client) -> None:
    now = dt.datetime.now(dt.UTC)
    created = user_event("created", "user_1", primary_email="a@x.io", display_name="Ada")
    updated = user_event("updated", "user_1", primary_email="b@x.io", display_name="Ada L")
    post_event(client, updated, msg_id=svix_message_id(now - dt.timedelta(seconds=5)))

    post_event(client, created, msg_id=svix_message_id(now - dt.timedelta(seconds=10)))

    user = StackUser.objects.get(pk="user_1")
    assert (user.email, user.display_name) == ("b@x.io", "Ada L")


def test_messages_created_in_the_same_millisecond_are_ordered_by_their_id(
    client: Client,
) -> None:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3)
    lower, higher = svix_message_id(moment, payload=1), svix_message_id(moment, payload=2)
    post_event(client, user_event("updated", "user_1", primary_email="high@x.io"), msg_id=higher)

    post_event(client, user_event("updated", "user_1", primary_email="low@x.io"), msg_id=lower)

    assert email_of("user_1") == "high@x.io"


def test_a_message_id_that_is_not_a_ksuid_is_ordered_by_its_signing_time(client: Client) -> None:
    now = dt.datetime.now(dt.UTC)
    post_event(
        client,
        user_event("updated", "user_1", primary_email="new@x.io"),
        msg_id="custom-2",
        timestamp=now,
    )

    late = post_event(
        client,
        user_event("updated", "user_1", primary_email="old@x.io"),
        msg_id="custom-1",
        timestamp=now - dt.timedelta(minutes=2),
    )

    assert late.status_code == 200
    assert email_of("user_1") == "new@x.io"


def test_a_message_id_claiming_a_time_after_its_signature_is_ordered_by_the_signature(
    client: Client,
) -> None:
    """An id whose time lies in the future would otherwise freeze the user for a year."""
    now = dt.datetime.now(dt.UTC)
    future_id = svix_message_id(now + dt.timedelta(days=365))
    post_event(client, user_event("updated", "user_1", primary_email="a@x.io"), msg_id=future_id)

    next_id = svix_message_id(now + dt.timedelta(seconds=1))
    later = post_event(
        client, user_event("updated", "user_1", primary_email="b@x.io"), msg_id=next_id
    )

    assert later.status_code == 200
    assert email_of("user_1") == "b@x.io"


def test_pruning_forgets_only_old_message_ids(client: Client) -> None:
    post_event(client, user_event("updated", "user_1", primary_email="a@x.io"), msg_id="msg_old")
    post_event(client, user_event("updated", "user_1", primary_email="b@x.io"), msg_id="msg_new")
    StackAuthWebhookMessage.objects.filter(svix_id="msg_old").update(
        received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    )
    out = io.StringIO()

    call_command("prune_webhook_messages", stdout=out)

    assert set(StackAuthWebhookMessage.objects.values_list("svix_id", flat=True)) == {"msg_new"}
    assert "Deleted 1" in out.getvalue()


@pytest.mark.parametrize("arguments", [["--days", "1"], ["--days", "-5"], ["--batch-size", "0"]])
def test_pruning_refuses_a_window_shorter_than_svix_retries(arguments: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("prune_webhook_messages", *arguments, stdout=io.StringIO())


def test_a_message_replayed_after_its_id_was_pruned_still_cannot_overwrite_newer_data(
    client: Client,
) -> None:
    now = dt.datetime.now(dt.UTC)
    old_id = svix_message_id(now - dt.timedelta(days=40))
    old = user_event("updated", "user_1", primary_email="old@x.io")
    post_event(client, old, msg_id=old_id)
    post_event(client, user_event("updated", "user_1", primary_email="new@x.io"))
    StackAuthWebhookMessage.objects.filter(svix_id=old_id).update(
        received_at=now - dt.timedelta(days=40)
    )
    call_command("prune_webhook_messages", "--days", "30", stdout=io.StringIO())

    replay = post_event(client, old, msg_id=old_id)

    assert replay.status_code == 200
    assert email_of("user_1") == "new@x.io"


def test_a_refused_message_is_not_remembered(client: Client) -> None:
    payload = json.dumps({"type": "user.updated", "data": {"id": "u", "primary_email": 5}})
    msg_id = svix_message_id()

    refused = post_event(client, payload, msg_id=msg_id)

    assert refused.status_code == 400
    assert not StackAuthWebhookMessage.objects.filter(svix_id=msg_id).exists()


def test_a_fractional_svix_timestamp_accepted_by_svix_is_accepted(client: Client) -> None:
    payload = json.dumps(user_event("updated", "user_1", primary_email="a@x.io"))
    msg_id = svix_message_id()
    seconds = int(dt.datetime.now(dt.UTC).timestamp())
    timestamp = f"{seconds}.250"
    # svix parses the header as a float and checks the signature over its whole seconds.
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{seconds}.{payload}".encode(), hashlib.sha256).digest()
    headers = {
        "HTTP_SVIX_ID": msg_id,
        "HTTP_SVIX_TIMESTAMP": timestamp,
        "HTTP_SVIX_SIGNATURE": "v1," + base64.b64encode(digest).decode(),
    }

    response = client.post(URL, data=payload, content_type="application/json", **headers)

    assert response.status_code == 200
    assert email_of("user_1") == "a@x.io"


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_message_apply_it_once() -> None:
    for round_number in range(3):
        AgentFactory.create(owner_id=f"user_{round_number}")
        payload = json.dumps(user_event("deleted", f"user_{round_number}", teams=[]))
        headers = signed_headers(payload)

        def deliver(headers: dict[str, Any] = headers, payload: str = payload) -> Any:
            response = Client().post(URL, data=payload, content_type="application/json", **headers)
            return response.status_code, response.json()["status"]

        results = race([deliver] * 6)

        assert Counter(results) == {(200, "ok"): 1, (200, "duplicate"): 5}
        assert not A1Agent.objects.filter(owner_id=f"user_{round_number}").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_older_and_newer_updates_leave_the_newer_email() -> None:
    now = dt.datetime.now(dt.UTC)
    for round_number in range(3):
        messages = [
            (svix_message_id(now - dt.timedelta(seconds=60 - n)), f"e{n}@x.io") for n in range(6)
        ]

        def deliver(user_id: str, msg_id: str, email: str) -> Callable[[], int]:
            payload = json.dumps(user_event("updated", user_id, primary_email=email))
            headers = signed_headers(payload, msg_id=msg_id)

            def post() -> int:
                return (
                    Client()
                    .post(URL, data=payload, content_type="application/json", **headers)
                    .status_code
                )

            return post

        user_id = f"user_{round_number}"
        results = race([deliver(user_id, msg_id, email) for msg_id, email in reversed(messages)])

        assert results == [200] * 6
        assert email_of(user_id) == "e5@x.io"


# --- user.deleted ----------------------------------------------------------------------------


def test_user_deleted_removes_their_agents_and_cancels_their_subscription(
    client: Client,
) -> None:
    doomed = [AgentFactory.create(owner_id="user_1") for _ in range(3)]
    survivor = AgentFactory.create(owner_id="user_2")
    SubscriptionFactory.create(user_id="user_1")
    SubscriptionFactory.create(user_id="user_2")

    response = post_event(client, user_event("deleted", "user_1", teams=[{"id": "team_1"}]))

    assert response.status_code == 200
    assert not A1Agent.objects.filter(pk__in=[agent.pk for agent in doomed]).exists()
    assert A1Agent.objects.filter(pk=survivor.pk).exists()
    assert UserSubscription.objects.get(user_id="user_1").status == SubscriptionStatus.CANCELLED
    assert UserSubscription.objects.get(user_id="user_2").status == SubscriptionStatus.ACTIVE
    event = BillingEvent.objects.get(user_id="user_1")
    assert (event.event_type, event.description) == (
        "subscription_cancelled",
        "stack_auth_user_deleted",
    )
    assert StackUser.objects.get(pk="user_1").deleted_at is not None


def test_user_deleted_for_a_user_never_seen_leaves_a_tombstone(client: Client) -> None:
    response = post_event(client, user_event("deleted", "user_unknown", teams=[]))

    assert response.status_code == 200
    assert StackUser.objects.get(pk="user_unknown").deleted_at is not None


def test_replayed_user_deleted_answers_200_and_changes_nothing_more(client: Client) -> None:
    AgentFactory.create(owner_id="user_1")
    SubscriptionFactory.create(user_id="user_1")
    event = user_event("deleted", "user_1", teams=[])
    post_event(client, event)
    deleted_at = StackUser.objects.get(pk="user_1").deleted_at

    response = post_event(client, event)

    assert response.status_code == 200
    assert BillingEvent.objects.filter(user_id="user_1").count() == 1
    assert StackUser.objects.get(pk="user_1").deleted_at == deleted_at


# --- other events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {"type": "something.new", "data": None},
        {"type": "session.created", "data": {"id": "s", "user_id": "u"}},
    ],
)
def test_other_event_types_are_acknowledged_and_ignored(
    client: Client, event: dict[str, Any]
) -> None:
    response = post_event(client, event)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert not StackUser.objects.exists()


# --- refused requests ------------------------------------------------------------------------


def test_bad_signature_is_refused_and_changes_nothing(client: Client) -> None:
    agent = AgentFactory.create(owner_id="user_1")
    other_secret = "whsec_" + base64.b64encode(b"some-other-secret-of-32-bytes!!!").decode()

    response = post_event(client, user_event("deleted", "user_1"), secret=other_secret)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert A1Agent.objects.filter(pk=agent.pk).exists()
    assert not StackUser.objects.exists()


def test_body_changed_after_signing_is_refused(client: Client) -> None:
    signed = json.dumps(user_event("created", "user_1"))
    headers = signed_headers(signed)
    tampered = json.dumps(user_event("created", "user_666"))

    response = client.post(URL, data=tampered, content_type="application/json", **headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not StackUser.objects.exists()


@pytest.mark.parametrize("missing", ["HTTP_SVIX_ID", "HTTP_SVIX_TIMESTAMP", "HTTP_SVIX_SIGNATURE"])
def test_missing_signature_header_is_refused(client: Client, missing: str) -> None:
    payload = json.dumps(user_event("created", "user_1"))
    headers = signed_headers(payload)
    del headers[missing]

    response = client.post(URL, data=payload, content_type="application/json", **headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not StackUser.objects.exists()


@pytest.mark.parametrize("signature", ["garbage", "v1,not-base64!", "v1,", "v2,AAAA", "v1,AAAA v1"])
def test_malformed_signature_header_is_refused(client: Client, signature: str) -> None:
    payload = json.dumps(user_event("created", "user_1"))
    headers = {**signed_headers(payload), "HTTP_SVIX_SIGNATURE": signature}

    response = client.post(URL, data=payload, content_type="application/json", **headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"


def test_expired_timestamp_is_refused(client: Client) -> None:
    ten_minutes_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)

    response = post_event(client, user_event("created", "user_1"), timestamp=ten_minutes_ago)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not StackUser.objects.exists()


def test_webhook_without_configured_secret_answers_503(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.STACK_AUTH_WEBHOOK_SECRET = ""

    response = post_event(client, user_event("created", "user_1"))

    assert response.status_code == 503
    assert response.json()["code"] == "webhook_unavailable"
    assert "STACK_AUTH_WEBHOOK_SECRET" in response.json()["detail"]
    assert not StackUser.objects.exists()


def test_webhook_with_an_invalid_configured_secret_answers_503(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.STACK_AUTH_WEBHOOK_SECRET = "whsec_"

    response = post_event(client, user_event("created", "user_1"))

    assert response.status_code == 503
    assert response.json()["code"] == "webhook_unavailable"


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "[]",
        json.dumps({"data": {"id": "user_1"}}),
        json.dumps({"type": "user.created"}),
        json.dumps({"type": "user.created", "data": {}}),
        json.dumps({"type": "user.deleted", "data": {"teams": []}}),
        json.dumps({"type": "user.updated", "data": {"id": "u", "primary_email": 5}}),
        json.dumps({"type": "user.updated", "data": {"id": "u\u0000"}}),
        "[" * 100_000,
    ],
)
def test_signed_but_malformed_body_is_refused_as_validation_error(
    client: Client, payload: str
) -> None:
    response = post_event(client, payload)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert not StackUser.objects.exists()


def test_get_is_not_allowed(client: Client) -> None:
    response = client.get(URL)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
