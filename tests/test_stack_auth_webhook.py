"""Stack Auth's Svix-signed webhooks keep the user mirror current and clean up deleted users."""

import base64
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper
from svix.webhooks import Webhook

from accounts.models import StackUser
from agents.models import A1Agent
from billing.models import BillingEvent, SubscriptionStatus, UserSubscription
from tests.factories import AgentFactory, SubscriptionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_auth")]

URL = "/stack-auth/webhook/"
SECRET = "whsec_" + base64.b64encode(b"stack-auth-webhook-test-secret!!").decode()


@pytest.fixture(autouse=True)
def _webhook_secret(settings: SettingsWrapper) -> None:
    settings.STACK_AUTH_WEBHOOK_SECRET = SECRET


def signed_headers(
    payload: str, *, secret: str = SECRET, timestamp: dt.datetime | None = None
) -> dict[str, Any]:
    """Return the Django test client headers Svix would send with this payload."""
    msg_id = f"msg_{uuid.uuid4().hex}"
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
        {"type": "team.created", "data": {"id": "team_1", "display_name": "T"}},
        {"type": "team_membership.created", "data": {"team_id": "team_1", "user_id": "u"}},
        {"type": "something.new", "data": None},
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
