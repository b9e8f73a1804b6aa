"""The two staff roles in the admin: `support` views everything, pauses and resumes agents,
and never sees a secret; `admin` may do everything the admin offers. Plus the users, billing,
conversation and audit pages that both roles work with."""

import re
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission, User
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import StackUser
from agents.models import A1Agent
from agents.services import agent_create
from audit.models import AuditEntry
from audit.roles import staff_groups_sync
from billing.models import BillingEvent, SubscriptionPlan, UserSubscription
from core.staff_permissions import STAFF_PERMISSIONS, SUPPORT_OPERATIONS
from integrations.services import integration_create
from tests.factories import AgentFactory, ConversationFactory, MessageFactory
from usage.models import UserMonthlyUsage

pytestmark = pytest.mark.django_db

SLACK_TOKEN = "xoxb-" + "0000000000-very-secret-token-wxyz"
SIGNING_SECRET = "signing-" + "secret-0123456789-abcd"


def staff_client(role: str | None, username: str | None = None) -> tuple[Client, User]:
    user = User.objects.create_user(username or role or "nobody", password="pw", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client, user


def permissions_of(group: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(group__name=group).values_list(
            "content_type__app_label", "codename"
        )
    }


@pytest.fixture
def agent_with_secrets() -> A1Agent:
    agent, _ = agent_create(
        owner_id="user_1",
        name="Secretive",
        handle="secret_bot",
        agent_type="work",
        email="owner@example.com",
    )
    integration_create(
        agent_id=agent.pk,
        provider="slack",
        config={"bot_token": SLACK_TOKEN, "signing_secret": SIGNING_SECRET},
    )
    return agent


# --- the groups ----------------------------------------------------------------------------


def test_the_migration_creates_support_and_admin_with_their_permissions() -> None:
    support = permissions_of("support")
    admin = permissions_of("admin")

    assert {
        "agents.view_a1agent",
        "agents.pause_agent",
        "audit.view_auditentry",
        "billing.view_usersubscription",
        "conversations.view_message",
        "integrations.view_agentintegration",
        "accounts.view_stackuser",
    } <= support
    assert all(p.split(".")[1].startswith("view_") for p in support - {"agents.pause_agent"})
    assert not {"djstripe.view_apikey", "auth.view_user"} & support
    assert {
        "agents.delete_a1agent",
        "agents.archive_agent",
        "agents.rotate_app_key",
        "billing.change_usersubscription",
        "billing.change_subscriptionplan",
    } <= admin
    # Staff accounts and groups are the operators' (superusers'): no role can promote itself.
    assert not {p for p in admin | support if p.startswith(("auth.", "admin.", "sessions."))}


def test_the_roles_follow_the_staff_permission_map() -> None:
    support = permissions_of("support")
    admin = permissions_of("admin")

    for operations in STAFF_PERMISSIONS.values():
        for operation, permission in operations.items():
            if permission is None:
                continue
            assert permission in admin
            assert (permission in support) == (operation in SUPPORT_OPERATIONS), permission
    assert (
        not {
            "agents.change_a1agent",
            "agents.archive_agent",
            "agents.rotate_app_key",
            "agents.delete_a1agent",
            "integrations.change_agentintegration",
            "billing.change_usersubscription",
            "billing.change_subscriptionplan",
        }
        & support
    )


def test_a_write_permission_given_to_support_by_hand_is_taken_away_by_the_sync() -> None:
    support = Group.objects.get(name="support")
    support.permissions.add(
        Permission.objects.get(content_type__app_label="agents", codename="rotate_app_key"),
        Permission.objects.get(content_type__app_label="agents", codename="change_a1agent"),
    )

    staff_groups_sync(django_apps)

    assert not {"agents.rotate_app_key", "agents.change_a1agent"} & permissions_of("support")
    assert "agents.pause_agent" in permissions_of("support")


# --- support -------------------------------------------------------------------------------


def test_support_views_agents_but_cannot_add_change_or_delete(
    agent_with_secrets: A1Agent,
) -> None:
    client, _ = staff_client("support")
    url = f"/admin/agents/a1agent/{agent_with_secrets.pk}/"

    page = client.get(url + "change/")
    changed = client.post(
        url + "change/", {"name": "hacked", "handle": "secret_bot", "agent_type": "work"}
    )

    assert client.get("/admin/agents/a1agent/").status_code == 200
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html  # a read-only page
    assert 'id="agent-pause"' in html
    assert 'id="agent-archive"' not in html
    assert 'id="agent-rotate-key"' not in html
    assert changed.status_code == 403
    assert client.get("/admin/agents/a1agent/add/").status_code == 403
    assert client.get(url + "delete/").status_code == 403
    assert client.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert client.post(url + "lifecycle/archive/").status_code == 403
    assert client.post(url + "lifecycle/rotate-key/").status_code == 403
    agent_with_secrets.refresh_from_db()
    assert (agent_with_secrets.name, agent_with_secrets.status) == ("Secretive", "active")
    listed = client.get("/admin/agents/a1agent/").content.decode()
    assert "pause_selected" in listed
    assert "resume_selected" in listed
    assert "archive_selected" not in listed
    assert "delete_selected" not in listed


def test_support_never_sees_a_secret_or_a_key_hash(agent_with_secrets: A1Agent) -> None:
    client, _ = staff_client("support")
    integration = agent_with_secrets.integrations.get()
    app_hash = A1Agent.objects.select_related("app").get(pk=agent_with_secrets.pk).app.key_hash
    assert app_hash

    pages = [
        client.get(f"/admin/agents/a1agent/{agent_with_secrets.pk}/change/"),
        client.get(f"/admin/integrations/agentintegration/{integration.pk}/change/"),
        client.get("/admin/integrations/agentintegration/"),
        client.get(f"/admin/agents/app/{agent_with_secrets.app_id}/change/"),
        client.get("/admin/agents/app/"),
        client.get("/admin/audit/auditentry/"),
        *(
            client.get(f"/admin/audit/auditentry/{entry.pk}/change/")
            for entry in AuditEntry.objects.all()
        ),
    ]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert SLACK_TOKEN not in html
        assert SIGNING_SECRET not in html
        assert app_hash not in html
        assert "gAAAAA" not in html  # no ciphertext either
    integration_page = pages[1].content.decode()
    assert "••••wxyz" in integration_page
    assert "••••abcd" in integration_page


def test_support_cannot_change_billing_or_plans_and_cannot_edit_the_audit_trail() -> None:
    client, _ = staff_client("support")
    agent_create(owner_id="user_1", name="A", handle="logged", agent_type="work")
    subscription = UserSubscription.objects.get(user_id="user_1")
    entry = AuditEntry.objects.first()
    assert entry is not None

    assert (
        client.get(f"/admin/billing/usersubscription/{subscription.pk}/change/").status_code == 200
    )
    assert (
        client.post(
            f"/admin/billing/usersubscription/{subscription.pk}/change/", {"plan_id": "enterprise"}
        ).status_code
        == 403
    )
    assert (
        client.post("/admin/billing/subscriptionplan/pro/change/", {"name": "Cheap"}).status_code
        == 403
    )
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    assert (
        client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert UserSubscription.objects.get(pk=subscription.pk).plan_id == "free"
    assert SubscriptionPlan.objects.get(pk="pro").name == "Pro"
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_staff_without_a_role_sees_no_customer_data() -> None:
    client, _ = staff_client(None, "newhire")
    AgentFactory.create()

    assert client.get("/admin/agents/a1agent/").status_code == 403
    assert client.get("/admin/audit/auditentry/").status_code == 403


# --- admin ---------------------------------------------------------------------------------


def test_admin_role_deletes_archives_and_rotates(agent_with_secrets: A1Agent) -> None:
    client, _ = staff_client("admin", "boss")
    other = AgentFactory.create(owner_id="user_2")
    url = f"/admin/agents/a1agent/{agent_with_secrets.pk}/"

    page = client.get(url + "change/").content.decode()
    archived = client.post(url + "lifecycle/archive/")
    deleted = client.post(f"/admin/agents/a1agent/{other.pk}/delete/", {"post": "yes"})

    assert 'id="agent-archive"' in page
    assert 'id="agent-rotate-key"' in page
    assert archived.status_code == 302
    assert A1Agent.objects.get(pk=agent_with_secrets.pk).status == "archived"
    assert deleted.status_code == 302
    assert not A1Agent.objects.filter(pk=other.pk).exists()
    assert AuditEntry.objects.filter(action="agent.deleted", actor_name="boss").count() == 1


def test_admin_role_changes_a_plan_and_it_is_recorded() -> None:
    client, user = staff_client("admin", "boss")
    plan = SubscriptionPlan.objects.get(pk="pro")
    form = {
        field.name: getattr(plan, field.name)
        for field in SubscriptionPlan._meta.concrete_fields
        if field.editable and field.name not in ("id", "created_at", "updated_at")
    }
    form["features"] = "[]"
    form = {key: ("" if value is None else value) for key, value in form.items()}
    form["messages_hard_cap"] = "on" if plan.messages_hard_cap else ""
    form["is_active"] = "true"  # a nullable boolean: a yes/no/unknown select

    response = client.post(
        "/admin/billing/subscriptionplan/pro/change/", {**form, "max_work_agents": 7}
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    assert SubscriptionPlan.objects.get(pk="pro").max_work_agents == 7
    entry = AuditEntry.objects.get(action="plan.updated")
    assert (entry.target_type, entry.target_id) == ("plan", "pro")
    assert (entry.actor_kind, entry.actor_id) == ("staff", str(user.pk))
    assert entry.changes == {"max_work_agents": {"before": 5, "after": 7}}


def test_a_negative_message_limit_is_refused_with_a_form_error_not_stored() -> None:
    """-1 (the seed's "unlimited" for agents) on messages would refuse every message on a
    hard cap and bill every one as overage; unlimited messages is an empty field."""
    client, _ = staff_client("admin", "boss")
    plan = SubscriptionPlan.objects.get(pk="pro")
    form = {
        field.name: getattr(plan, field.name)
        for field in SubscriptionPlan._meta.concrete_fields
        if field.editable and field.name not in ("id", "created_at", "updated_at")
    }
    form["features"] = "[]"
    form = {key: ("" if value is None else value) for key, value in form.items()}
    form["messages_hard_cap"] = "on" if plan.messages_hard_cap else ""
    form["is_active"] = "true"

    response = client.post(
        "/admin/billing/subscriptionplan/pro/change/", {**form, "max_messages_per_month": -1}
    )

    assert response.status_code == 200  # the form again, with its error
    assert "subscription_plans_messages_not_negative" in response.content.decode() or (
        "errornote" in response.content.decode()
    )
    assert SubscriptionPlan.objects.get(pk="pro").max_messages_per_month == 50_000
    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionPlan.objects.filter(pk="pro").update(max_messages_per_month=-1)


def test_admin_role_adds_a_subscription_for_a_user_on_a_paid_plan_with_its_limits() -> None:
    client, _ = staff_client("admin", "boss")

    response = client.post(
        "/admin/billing/usersubscription/add/",
        {
            "user_id": "fresh",
            "plan_id": "pro",
            "max_personal_agents": "1",
            "max_work_agents": "1",
            "max_total_agents": "2",
        },
    )

    assert response.status_code == 302
    subscription = UserSubscription.objects.get(user_id="fresh")
    assert (subscription.plan_id, subscription.max_total_agents) == ("pro", 10)
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor_name"))
    assert actions == [("subscription.created", "boss"), ("subscription.plan_changed", "boss")]


def test_conversations_and_messages_are_read_only_for_every_role() -> None:
    conversation = ConversationFactory.create(external_user_id="ext_42", thread_id="thr_9")
    ConversationFactory.create(external_user_id="someone_else")
    message = MessageFactory.create(conversation=conversation, content="private words")

    for role in ("support", "admin"):
        client, _ = staff_client(role, f"{role}_reader")
        base = "/admin/conversations/"
        by_user = client.get(base + "agentconversation/", {"q": "ext_42"}).content.decode()
        by_thread = client.get(base + "agentconversation/", {"q": "thr_9"}).content.decode()
        assert str(conversation.pk) in by_user
        assert "someone_else" not in by_user
        assert str(conversation.pk) in by_thread
        assert "someone_else" not in by_thread
        assert client.get(base + f"message/{message.pk}/change/").status_code == 200
        assert client.get(base + "message/add/").status_code == 403
        assert (
            client.post(base + f"message/{message.pk}/change/", {"content": "edited"}).status_code
            == 403
        )
        assert (
            client.post(
                base + f"agentconversation/{conversation.pk}/delete/", {"post": "yes"}
            ).status_code
            == 403
        )
        assert (
            str(message.pk)
            in client.get(base + "message/", {"q": str(conversation.pk)}).content.decode()
        )


# --- users ---------------------------------------------------------------------------------


def test_user_page_shows_subscription_agents_events_usage_and_over_limit() -> None:
    client, _ = staff_client("support")
    StackUser.objects.create(id="user_7", email="seven@example.com", display_name="Seven")
    for n in range(3):
        AgentFactory.create(owner_id="user_7", handle=f"seven_{n}", agent_type="personal")
    UserSubscription.objects.create(
        user_id="user_7",
        plan_id="free",
        max_personal_agents=1,
        max_work_agents=1,
        max_total_agents=2,
    )
    BillingEvent.objects.create(
        user_id="user_7", event_type="plan_changed", description="Plan changed"
    )
    month = timezone.now().date().replace(day=1)
    UserMonthlyUsage.objects.create(user_id="user_7", month=month, message_count=321)

    listing = client.get("/admin/accounts/stackuser/", {"q": "SEVEN@example.com"})
    page = client.get("/admin/accounts/stackuser/user_7/change/")
    html = page.content.decode()

    assert listing.status_code == 200
    row = listing.content.decode()
    assert "user_7" in row
    assert 'field-plan">free<' in row
    assert 'field-agents">3<' in row
    assert page.status_code == 200
    assert re.search(r'id="over-limit"><span class="over-limit">yes: personal, total', html)
    assert "321 messages of 1000" in html
    assert html.count("/admin/agents/a1agent/") >= 3
    assert "@seven_2" in html
    assert "plan_changed" in html
    subscription = UserSubscription.objects.get(user_id="user_7")
    assert f"/admin/billing/usersubscription/{subscription.pk}/change/" in html


def test_user_without_a_subscription_links_to_a_prefilled_new_one() -> None:
    client, _ = staff_client("admin", "boss")
    StackUser.objects.create(id="user_8", email="eight@example.com")

    html = client.get("/admin/accounts/stackuser/user_8/change/").content.decode()
    add = client.get("/admin/billing/usersubscription/add/?user_id=user_8").content.decode()

    assert "/admin/billing/usersubscription/add/?user_id=user_8" in html
    assert 'value="user_8"' in add


def test_billing_event_list_filters_by_type_without_reading_distinct_values(
    django_assert_max_num_queries: Any,
) -> None:
    client, _ = staff_client("support")
    BillingEvent.objects.create(
        user_id="user_paid_invoice", event_type="invoice.paid", invoice_id="in_1"
    )
    BillingEvent.objects.create(user_id="user_plan_change", event_type="plan_changed")

    with django_assert_max_num_queries(8):
        filtered = client.get("/admin/billing/billingevent/", {"event_type": "invoice.paid"})
    by_invoice = client.get("/admin/billing/billingevent/", {"q": "in_1"})

    assert filtered.status_code == 200
    assert "user_paid_invoice" in filtered.content.decode()
    assert "user_plan_change" not in filtered.content.decode()
    assert "user_paid_invoice" in by_invoice.content.decode()
    assert "user_plan_change" not in by_invoice.content.decode()
