"""The audit trail: every change to an agent, app key, subscription, plan or integration is
recorded with who, what and when, in the change's transaction, from the API, the admin and
the webhooks, without personal data or secrets; owners read their agents' trail."""

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient
from svix.webhooks import Webhook

from agents.errors import AgentLimitReached
from agents.models import A1Agent
from agents.services import agent_create, agent_pause, agent_resume
from audit.actors import SYSTEM, Actor, actor_coerce
from audit.models import AuditEntry
from audit.services import audit_changes, audit_record
from billing.models import UserSubscription
from billing.services import subscription_change_plan
from tests.factories import AgentFactory, SubscriptionFactory
from tests.stripe_fake import StripeFake
from tests.test_billing_stripe import deliver, subscription_event

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]

EMAIL = "private.person@example.com"
PHONE = "+15551234567"
SLACK_TOKEN = "xoxb-" + "1111111111-audit-secret-token-zz99"


def raw_audit_log() -> str:
    """Everything the audit table holds, as PostgreSQL stores it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(string_agg(audit_log::text, ' '), '') FROM audit_log")
        return str(cursor.fetchone()[0])


def actions() -> list[tuple[str, str, str]]:
    return list(AuditEntry.objects.order_by("id").values_list("action", "actor_kind", "actor_id"))


# --- the API -------------------------------------------------------------------------------


def test_api_changes_are_recorded_with_the_owner_and_without_contact_details(
    api_client: APIClient, owner_headers: Headers
) -> None:
    headers = owner_headers("user_1")
    created = api_client.post(
        "/api/v1/agents/",
        {
            "name": "Helper",
            "handle": "audit_bot",
            "agent_type": "work",
            "email": EMAIL,
            "phone_number": PHONE,
        },
        format="json",
        **headers,
    ).json()
    url = f"/api/v1/agents/{created['id']}/"

    api_client.patch(url, {"name": "Renamed", "email": "other." + EMAIL}, format="json", **headers)
    api_client.post(url + "pause/", **headers)
    api_client.post(url + "pause/", **headers)  # already paused: no change, no entry
    rotated = api_client.post(url + "rotate-key/", **headers).json()
    api_client.delete(url, **headers)

    assert actions() == [
        ("subscription.created", "owner", "user_1"),
        ("agent.created", "owner", "user_1"),
        ("agent.updated", "owner", "user_1"),
        ("agent.paused", "owner", "user_1"),
        ("app_key.rotated", "owner", "user_1"),
        ("agent.deleted", "owner", "user_1"),
    ]
    updated = AuditEntry.objects.get(action="agent.updated")
    assert updated.changes == {
        "email": {"before": "[redacted]", "after": "[redacted]"},
        "name": {"before": "Helper", "after": "Renamed"},
    }
    created_entry = AuditEntry.objects.get(action="agent.created")
    assert created_entry.changes["email"] == {"before": None, "after": "[redacted]"}
    assert created_entry.changes["handle"] == {"before": None, "after": "audit_bot"}
    assert {entry.agent_id for entry in AuditEntry.objects.exclude(agent_id=None)} == {
        uuid.UUID(created["id"])
    }
    stored = raw_audit_log()
    for secret in (EMAIL, PHONE, created["app_key"], rotated["app_key"]):
        assert secret not in stored
    assert "key_hash" not in stored


def test_usage_reported_by_an_app_changes_nothing_audited(api_client: APIClient) -> None:
    _, key = agent_create(owner_id="user_1", name="A", handle="app_bot", agent_type="work")
    before = AuditEntry.objects.count()

    response = api_client.post(
        "/api/v1/usage/events/",
        {"id": "e1", "messages": 1},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.status_code == 202
    assert AuditEntry.objects.count() == before


def test_integration_changes_are_recorded_with_secrets_and_addresses_redacted(
    api_client: APIClient, owner_headers: Headers
) -> None:
    headers = owner_headers("user_1")
    agent, _ = agent_create(owner_id="user_1", name="A", handle="int_bot", agent_type="work")
    slack = api_client.post(
        "/api/v1/integrations/",
        {
            "agent": str(agent.pk),
            "provider": "slack",
            "config": {"bot_token": SLACK_TOKEN, "signing_secret": "x" * 20, "channel_id": "C1"},
        },
        format="json",
        **headers,
    ).json()
    mail = api_client.post(
        "/api/v1/integrations/",
        {
            "agent": str(agent.pk),
            "provider": "email",
            "config": {
                "address": EMAIL,
                "smtp_host": "smtp.example.com",
                "smtp_port": 587,
                "smtp_username": EMAIL,
                "smtp_password": "hunter2hunter2",
            },
        },
        format="json",
        **headers,
    ).json()

    api_client.patch(
        f"/api/v1/integrations/{slack['id']}/",
        {"config": {"channel_id": "C2"}, "status": "disabled"},
        format="json",
        **headers,
    )
    api_client.delete(f"/api/v1/integrations/{mail['id']}/", **headers)

    entries = {
        (entry.action, entry.target_id): entry
        for entry in AuditEntry.objects.filter(target_type="integration")
    }
    created = entries[("integration.created", slack["id"])]
    assert created.changes["config.bot_token"] == {"before": None, "after": "[redacted]"}
    assert created.changes["config.channel_id"] == {"before": None, "after": "C1"}
    assert (created.actor_kind, created.owner_id, created.agent_id) == ("owner", "user_1", agent.pk)
    updated = entries[("integration.updated", slack["id"])]
    assert updated.changes == {
        "config.channel_id": {"before": "C1", "after": "C2"},
        "status": {"before": "active", "after": "disabled"},
    }
    deleted = entries[("integration.deleted", mail["id"])]
    assert deleted.changes["config.address"] == {"before": "[redacted]", "after": None}
    assert deleted.changes["config.smtp_host"] == {"before": "smtp.example.com", "after": None}
    stored = raw_audit_log()
    for secret in (SLACK_TOKEN, EMAIL, "hunter2hunter2", "gAAAAA"):
        assert secret not in stored


def test_staff_changes_through_the_api_are_recorded_as_staff(api_client: APIClient) -> None:
    staff = User.objects.create_user("helper", password="pw", is_staff=True)
    staff.groups.add(Group.objects.get(name="support"))
    agent = AgentFactory.create(owner_id="user_3")
    api_client.force_login(staff)

    api_client.post(f"/api/v1/agents/{agent.pk}/pause/")

    entry = AuditEntry.objects.get(action="agent.paused")
    assert (entry.actor_kind, entry.actor_id, entry.actor_name) == (
        "staff",
        str(staff.pk),
        "helper",
    )
    assert entry.owner_id == "user_3"


# --- webhooks ------------------------------------------------------------------------------


def test_a_stripe_webhook_records_what_it_changed_as_stripe(fake: StripeFake) -> None:
    event = subscription_event(fake, "created", user="user_s", lookup_key="a1zap_pro_month")

    response = deliver(event)
    again = deliver(event)  # a duplicate changes nothing and records nothing

    assert (response.status_code, again.status_code) == (200, 200)
    updated = AuditEntry.objects.get(action="subscription.updated")
    assert (updated.actor_kind, updated.actor_id) == ("stripe", event["id"])
    assert updated.context == {"stripe_event_type": "customer.subscription.created"}
    assert updated.changes["plan_id"] == {"before": "free", "after": "pro"}
    assert updated.changes["max_total_agents"] == {"before": 2, "after": 10}
    assert updated.owner_id == "user_s"
    assert [a for a, _, _ in actions()] == ["subscription.created", "subscription.updated"]


STACK_SECRET = "whsec_" + base64.b64encode(b"stack-auth-webhook-test-secret!!").decode()


def test_a_stack_auth_user_deletion_records_each_agent_and_the_cancellation(
    settings: SettingsWrapper,
) -> None:
    settings.STACK_AUTH_WEBHOOK_SECRET = STACK_SECRET
    doomed = [AgentFactory.create(owner_id="user_gone") for _ in range(2)]
    SubscriptionFactory.create(user_id="user_gone", plan_id="pro")
    payload = json.dumps({"type": "user.deleted", "data": {"id": "user_gone"}})
    msg_id = f"msg_{uuid.uuid4().hex}"
    sent_at = dt.datetime.now(dt.UTC)

    response = Client().post(
        "/stack-auth/webhook/",
        data=payload,
        content_type="application/json",
        HTTP_SVIX_ID=msg_id,
        HTTP_SVIX_TIMESTAMP=str(int(sent_at.timestamp())),
        HTTP_SVIX_SIGNATURE=Webhook(STACK_SECRET).sign(msg_id, sent_at, payload),
    )

    assert response.status_code == 200
    entries = AuditEntry.objects.filter(actor_kind="stack-auth", actor_id=msg_id)
    assert sorted(entries.values_list("action", flat=True)) == [
        "agent.deleted",
        "agent.deleted",
        "subscription.cancelled",
    ]
    assert {e.agent_id for e in entries if e.action == "agent.deleted"} == {a.pk for a in doomed}
    cancelled = entries.get(action="subscription.cancelled")
    assert cancelled.changes["status"] == {"before": "active", "after": "cancelled"}
    assert cancelled.context == {"reason": "stack_auth_user_deleted"}


# --- the admin -----------------------------------------------------------------------------


def test_admin_subscription_changes_are_recorded_with_the_staff_member() -> None:
    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    staff.groups.add(Group.objects.get(name="admin"))
    subscription = UserSubscription.objects.create(user_id="user_9")
    client = Client()
    client.force_login(staff)
    url = f"/admin/billing/usersubscription/{subscription.pk}/change/"

    client.post(
        url,
        {
            "plan_id": "pro",
            "max_personal_agents": "5",
            "max_work_agents": "5",
            "max_total_agents": "10",
        },
    )
    client.post(
        url,
        {
            "plan_id": "pro",
            "max_personal_agents": "7",
            "max_work_agents": "5",
            "max_total_agents": "12",
        },
    )

    assert actions() == [
        ("subscription.plan_changed", "staff", str(staff.pk)),
        ("subscription.limits_overridden", "staff", str(staff.pk)),
    ]
    overridden = AuditEntry.objects.get(action="subscription.limits_overridden")
    assert overridden.changes == {
        "max_personal_agents": {"before": 5, "after": 7},
        "max_total_agents": {"before": 10, "after": 12},
    }
    assert overridden.actor_label == "staff:ops"


def test_the_audit_log_filters_by_actor_kind_target_type_and_date() -> None:
    staff = User.objects.create_user("reader", password="pw", is_staff=True)
    staff.groups.add(Group.objects.get(name="support"))
    agent, _ = agent_create(
        owner_id="user_1",
        name="A",
        handle="filtered",
        agent_type="work",
        actor=Actor.owner("user_1"),
    )
    subscription_change_plan(user_id="user_1", plan_id="pro", actor=Actor.stripe("evt_1"))
    client = Client()
    client.force_login(staff)
    url = "/admin/audit/auditentry/"

    by_kind = client.get(url, {"actor_kind__exact": "stripe"}).content.decode()
    by_target = client.get(url, {"target_type__exact": "agent"}).content.decode()
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    by_date = client.get(
        url,
        {
            "created_at__gte": str(midnight),
            "created_at__lt": str(midnight + dt.timedelta(days=1)),
        },
    ).content.decode()
    by_agent = client.get(url, {"q": str(agent.pk)}).content.decode()

    assert "subscription.plan_changed" in by_kind
    assert "agent.created" not in by_kind
    assert "agent.created" in by_target
    assert "subscription.plan_changed" not in by_target
    assert "agent.created" in by_date
    assert "subscription.plan_changed" in by_date
    assert "agent.created" in by_agent
    assert "subscription.plan_changed" not in by_agent


# --- the owners' API -----------------------------------------------------------------------


def test_owners_read_their_agents_trail_newest_first_with_cursor_pages(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, _ = agent_create(owner_id="user_1", name="A", handle="trail_bot", agent_type="work")
    staff = User.objects.create_user("secret_name", password="pw", is_staff=True)
    paused = agent_pause(agent=agent, actor=Actor.staff(staff))
    agent_resume(agent=paused, actor=Actor.owner("user_1"))
    url = f"/api/v1/agents/{agent.pk}/audit/"

    first = api_client.get(url, {"page_size": 2}, **owner_headers("user_1"))
    second = api_client.get(first.json()["next"], **owner_headers("user_1"))

    assert first.status_code == 200
    body = first.json()
    assert [entry["action"] for entry in body["results"]] == ["agent.resumed", "agent.paused"]
    assert body["results"][0]["actor"] == {"kind": "owner", "id": "user_1"}
    assert body["results"][1]["actor"] == {"kind": "staff", "id": None}  # staff are not named
    assert body["results"][1]["changes"] == {"status": {"before": "active", "after": "paused"}}
    assert "secret_name" not in first.content.decode()
    assert [entry["action"] for entry in second.json()["results"]] == ["agent.created"]
    assert second.json()["next"] is None


def test_another_owners_agent_trail_is_404_and_anonymous_is_401(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent, _ = agent_create(owner_id="user_2", name="A", handle="not_yours", agent_type="work")

    other = api_client.get(f"/api/v1/agents/{agent.pk}/audit/", **owner_headers("user_1"))
    unknown = api_client.get(f"/api/v1/agents/{uuid.uuid4()}/audit/", **owner_headers("user_1"))
    anonymous = api_client.get(f"/api/v1/agents/{agent.pk}/audit/")

    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    assert "user_2" not in other.content.decode()
    assert unknown.status_code == 404
    assert anonymous.status_code == 401


def test_the_trail_endpoint_runs_a_constant_number_of_queries(
    api_client: APIClient, owner_headers: Headers, django_assert_max_num_queries: Any
) -> None:
    agent, _ = agent_create(owner_id="user_1", name="A", handle="many_bot", agent_type="work")
    for _ in range(30):
        agent = agent_resume(agent=agent_pause(agent=agent))
    headers = owner_headers("user_1")
    api_client.get(f"/api/v1/agents/{agent.pk}/audit/", **headers)  # warm the caches

    with django_assert_max_num_queries(4):
        response = api_client.get(f"/api/v1/agents/{agent.pk}/audit/", **headers)

    assert len(response.json()["results"]) == 50


# --- the record itself ---------------------------------------------------------------------


def test_a_refused_change_records_nothing_and_a_rolled_back_one_leaves_no_trail() -> None:
    agent_create(owner_id="full", name="One", handle="only_one", agent_type="personal")
    waiting = AgentFactory.create(owner_id="full", agent_type="personal", status="archived")
    before = AuditEntry.objects.count()

    with pytest.raises(AgentLimitReached):
        agent_resume(agent=waiting)

    def pause_then_fail() -> None:
        with transaction.atomic():
            agent_pause(agent=A1Agent.objects.get(handle="only_one"))
            raise RuntimeError("the caller fails after the change")

    with pytest.raises(RuntimeError):
        pause_then_fail()

    assert AuditEntry.objects.count() == before
    assert A1Agent.objects.get(handle="only_one").status == "active"


def test_audit_rows_are_append_only() -> None:
    agent_create(owner_id="u1", name="A", handle="append_only", agent_type="work")
    entry = AuditEntry.objects.get(action="agent.created")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="agent.forged")

    entry.refresh_from_db()
    assert entry.action == "agent.created"


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused(default_plans: None) -> None:
    with pytest.raises(RuntimeError, match=r"transaction\.atomic"):
        audit_record(actor=SYSTEM, action="agent.updated", target_type="agent", target_id="x")


def test_changes_keep_only_what_differs_and_redact_what_is_personal() -> None:
    changes = audit_changes(
        {"name": "A", "email": "a@x.io", "phone_number": None, "description": None},
        {"name": "B", "email": None, "phone_number": "+1555", "description": ""},
        redacted={"email", "phone_number"},
    )

    assert "settings" not in audit_changes(
        {"settings": None}, {"settings": {}}, redacted={"settings"}
    )
    assert changes == {
        "email": {"before": "[redacted]", "after": None},
        "name": {"before": "A", "after": "B"},
        "phone_number": {"before": None, "after": "[redacted]"},
    }


def test_older_string_actors_are_still_understood() -> None:
    assert actor_coerce("staff:ann") == Actor(kind="staff", name="ann")
    assert actor_coerce("stripe:evt_1") == Actor(kind="stripe", id="evt_1")
    assert actor_coerce("a migration").label == "system:a migration"
    assert Actor.owner("user_1").label == "owner:user_1"
