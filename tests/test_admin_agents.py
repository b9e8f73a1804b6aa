"""The support console's agent pages: the list (search, filters, plan, last activity, counts
that never scan the table), the agent page's panels, and the actions, which go through the
agents services."""

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import StackUser
from agents.models import A1Agent, AgentStatus, App
from agents.services import agent_create
from audit.models import AuditEntry
from billing.models import UserSubscription
from console.admin_base import EstimatedCountPaginator
from integrations.services import integration_create
from tests.factories import AgentFactory, ConversationFactory, SubscriptionFactory, UsageFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/agents/a1agent/"


def staff_client(role: str = "support", username: str | None = None) -> tuple[Client, User]:
    user = User.objects.create_user(username or role, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client, user


def change_url(agent: A1Agent) -> str:
    return f"{CHANGELIST}{agent.pk}/change/"


def listed_handles(response: Any) -> list[str]:
    return re.findall(r"@([A-Za-z0-9_]+)</td>", response.content.decode())


def bulk_agents(count: int, *, owner_id: str = "bulk_owner", start: int = 0) -> None:
    """Insert agents and their apps in two statements (both foreign keys are deferred)."""
    ids = [uuid.uuid4() for _ in range(count)]
    apps = App.objects.bulk_create(
        App(agent_id=agent_id, key_prefix=f"a1app_{n:06d}")
        for n, agent_id in enumerate(ids, start=start)
    )
    A1Agent.objects.bulk_create(
        A1Agent(
            id=agent_id,
            owner_id=owner_id,
            app=app,
            name=f"Bulk {n}",
            handle=f"bulk_{n}",
            agent_type="work",
        )
        for n, (agent_id, app) in enumerate(zip(ids, apps, strict=True), start=start)
    )


# --- the list --------------------------------------------------------------------------------


def test_list_shows_handle_owner_type_status_plan_and_last_activity() -> None:
    client, _ = staff_client()
    pro = AgentFactory.create(owner_id="payer", handle="pro_bot", agent_type="work")
    SubscriptionFactory.create(user_id="payer", plan_id="pro")
    AgentFactory.create(owner_id="nobody", handle="free_bot", status="paused")
    talked_at = timezone.now() - dt.timedelta(hours=3)
    ConversationFactory.create(agent=pro, last_message_at=talked_at)
    UsageFactory.create(agent=pro, date=timezone.now().date() - dt.timedelta(days=5))

    response = client.get(CHANGELIST)
    html = response.content.decode()

    assert response.status_code == 200
    rows = dict(re.findall(r"@(\w+)</td>(.*?)</tr>", html, re.S))
    assert set(rows) == {"pro_bot", "free_bot"}
    assert "payer" in rows["pro_bot"]
    assert 'field-plan">pro<' in rows["pro_bot"]
    assert 'field-plan">free<' in rows["free_bot"]
    assert 'field-status">Paused<' in rows["free_bot"]
    assert 'field-last_activity">-<' not in rows["pro_bot"]  # the conversation counts
    assert 'field-last_activity">-<' in rows["free_bot"]


def test_list_filters_by_status_type_and_plan() -> None:
    client, _ = staff_client()
    AgentFactory.create(owner_id="payer", handle="pro_work", agent_type="work")
    SubscriptionFactory.create(user_id="payer", plan_id="pro")
    AgentFactory.create(owner_id="free_1", handle="free_personal")
    AgentFactory.create(owner_id="free_2", handle="free_paused", status="paused")
    SubscriptionFactory.create(user_id="free_2", plan_id="free")

    assert listed_handles(client.get(CHANGELIST, {"plan": "pro"})) == ["pro_work"]
    assert sorted(listed_handles(client.get(CHANGELIST, {"plan": "free"}))) == [
        "free_paused",
        "free_personal",
    ]
    assert listed_handles(client.get(CHANGELIST, {"status__exact": "paused"})) == ["free_paused"]
    assert listed_handles(client.get(CHANGELIST, {"agent_type__exact": "work"})) == ["pro_work"]


def test_search_finds_a_handle_in_any_case_through_the_lower_handle_index() -> None:
    client, _ = staff_client()
    AgentFactory.create(handle="Support_Bot")
    AgentFactory.create(handle="other_bot", name="support_bot fan club")

    with CaptureQueriesContext(connection) as queries:
        upper = client.get(CHANGELIST, {"q": "SUPPORT_BOT"})
    searches = [q["sql"] for q in queries.captured_queries if "a1_agents" in q["sql"]]
    at_lower = client.get(CHANGELIST, {"q": "@support_bot"})

    assert listed_handles(upper) == ["Support_Bot"]
    assert listed_handles(at_lower) == ["Support_Bot"]
    assert any('LOWER("a1_agents"."handle") =' in sql for sql in searches), searches
    assert not any('UPPER("a1_agents"."handle"' in sql for sql in searches), searches


def test_search_by_email_uses_the_hash_and_finds_owners_by_their_email_too() -> None:
    client, _ = staff_client()
    agent_create(
        owner_id="u1", name="A", handle="mail_bot", agent_type="work", email="Help@Example.com"
    )
    AgentFactory.create(owner_id="u2", handle="owner_bot")
    StackUser.objects.create(id="u2", email="Owner@Example.org")
    AgentFactory.create(handle="bystander")

    with CaptureQueriesContext(connection) as queries:
        by_agent_email = client.get(CHANGELIST, {"q": "help@example.COM"})
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    by_owner_email = client.get(CHANGELIST, {"q": "owner@example.org"})

    assert listed_handles(by_agent_email) == ["mail_bot"]
    assert listed_handles(by_owner_email) == ["owner_bot"]
    assert '"a1_agents"."email_hash" =' in sql
    # The agents' encrypted column is never compared (nor could it be: it is ciphertext).
    assert '"a1_agents"."email" =' not in sql
    assert 'LOWER(U0."email") =' in sql  # owners: through the mirror's lower(email) index


def test_search_by_owner_id_agent_id_and_part_of_the_name() -> None:
    client, _ = staff_client()
    mine = AgentFactory.create(owner_id="user_abc", handle="first", name="Weather helper")
    AgentFactory.create(owner_id="user_abc", handle="second")
    AgentFactory.create(owner_id="someone", handle="third")

    assert sorted(listed_handles(client.get(CHANGELIST, {"q": "user_abc"}))) == [
        "first",
        "second",
    ]
    assert listed_handles(client.get(CHANGELIST, {"q": str(mine.pk)})) == ["first"]
    assert listed_handles(client.get(CHANGELIST, {"q": "weather"})) == ["first"]


def _changelist_queries(client: Client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def test_changelist_runs_the_same_bounded_number_of_queries_for_10_and_1000_agents() -> None:
    client, _ = staff_client()
    bulk_agents(10, owner_id="small")
    SubscriptionFactory.create(user_id="small", plan_id="pro")
    client.get(CHANGELIST)  # warm the session
    ten = _changelist_queries(client)
    bulk_agents(990, owner_id="big", start=10)

    thousand = _changelist_queries(client)

    assert len(thousand) == len(ten) <= 8, thousand
    # Never a COUNT over the whole table: a count is capped by a LIMIT (or, once the planner
    # knows the table is large, replaced by its estimate).
    counts = [sql for sql in thousand if "COUNT(" in sql.upper()]
    assert all("LIMIT" in sql for sql in counts), counts


def test_an_unfiltered_large_table_is_counted_from_the_planner_estimate() -> None:
    bulk_agents(60)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE a1_agents")

    class SmallLimit(EstimatedCountPaginator):
        exact_count_limit = 50

    unfiltered = SmallLimit(A1Agent.objects.order_by("handle"), 20)
    filtered = SmallLimit(A1Agent.objects.filter(agent_type="work").order_by("handle"), 20)
    with CaptureQueriesContext(connection) as queries:
        estimated = unfiltered.count
    capped = filtered.count

    assert estimated == 60
    assert unfiltered.is_approximate
    assert [q["sql"] for q in queries.captured_queries if "count" in q["sql"].lower()] == []
    assert capped == 51  # counted up to the limit, not past it
    assert filtered.is_approximate
    assert len(filtered.page(4).object_list) == 0  # past the end: empty, not an error
    one = SmallLimit(A1Agent.objects.filter(handle="bulk_1").order_by("handle"), 20)
    assert (one.count, one.is_approximate, len(one.page(1))) == (1, False, 1)


# --- the agent page ------------------------------------------------------------------------


def test_agent_page_shows_app_prefix_subscription_usage_chart_conversations_and_integrations() -> (
    None
):
    client, _ = staff_client()
    agent, key = agent_create(owner_id="payer", name="Shown", handle="shown_bot", agent_type="work")
    UserSubscription.objects.filter(user_id="payer").update(plan_id="pro", max_total_agents=10)
    today = timezone.now().date()
    UsageFactory.create(agent=agent, date=today, message_count=40)
    UsageFactory.create(agent=agent, date=today - dt.timedelta(days=3), message_count=10)
    conversation = ConversationFactory.create(agent=agent, external_user_id="ext_1")
    slack_token = "xoxb-" + "1234567890-secret-token-abcd"
    integration_create(
        agent_id=agent.pk,
        provider="slack",
        config={"bot_token": slack_token, "signing_secret": "s" * 32},
    )

    response = client.get(change_url(agent))
    html = response.content.decode()

    assert response.status_code == 200
    assert agent.app.key_prefix in html
    assert key not in html
    app = App.objects.get(pk=agent.app_id)
    assert app.key_hash
    assert app.key_hash not in html
    assert "pro" in html
    assert "total 1 / 10" in html
    assert '<svg class="usage-chart"' in html
    assert html.count("<rect ") == 30
    assert 'height="80"><title>' in html  # the peak day fills the chart
    assert f"/admin/conversations/agentconversation/{conversation.pk}/change/" in html
    assert "••••abcd" in html
    assert slack_token not in html
    assert "agent.created" in html
    assert "integration.created" in html


def test_agent_page_of_an_unknown_agent_redirects_like_any_missing_object() -> None:
    client, _ = staff_client()

    response = client.get(f"{CHANGELIST}{uuid.uuid4()}/change/")

    assert response.status_code == 302


# --- actions -------------------------------------------------------------------------------


def test_pausing_in_the_admin_stops_the_apps_usage_and_is_recorded(
    api_client: APIClient,
) -> None:
    client, support = staff_client()
    agent, key = agent_create(owner_id="u1", name="P", handle="pause_me", agent_type="work")

    response = client.post(
        CHANGELIST, {"action": "pause_selected", "_selected_action": [str(agent.pk)]}
    )
    usage = api_client.post(
        "/api/v1/usage/events/",
        {"id": "e1", "messages": 1},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.status == AgentStatus.PAUSED
    assert (usage.status_code, usage.json()["code"]) == (409, "agent_not_active")
    entry = AuditEntry.objects.get(action="agent.paused")
    assert (entry.actor_kind, entry.actor_id, entry.actor_name) == (
        "staff",
        str(support.pk),
        "support",
    )
    assert entry.changes == {"status": {"before": "active", "after": "paused"}}


def test_the_pause_button_on_the_agent_page_pauses_and_resume_brings_it_back() -> None:
    client, _ = staff_client()
    agent, _ = agent_create(owner_id="u1", name="B", handle="button_bot", agent_type="work")
    url = f"{CHANGELIST}{agent.pk}/lifecycle/"

    assert 'id="agent-pause"' in client.get(change_url(agent)).content.decode()
    paused = client.post(url + "pause/", follow=True)
    agent.refresh_from_db()
    assert agent.status == "paused"
    assert "@button_bot paused." in paused.content.decode()
    assert 'id="agent-resume"' in paused.content.decode()
    client.post(url + "resume/")
    agent.refresh_from_db()
    assert agent.status == "active"
    assert client.get(url + "pause/").status_code == 405


def test_resuming_past_the_plan_limit_is_an_admin_error_message_not_a_500() -> None:
    client, _ = staff_client()
    agent_create(owner_id="full", name="One", handle="first_one", agent_type="personal")
    waiting = AgentFactory.create(
        owner_id="full", handle="waiting", agent_type="personal", status="archived"
    )

    action = client.post(
        CHANGELIST,
        {"action": "resume_selected", "_selected_action": [str(waiting.pk)]},
        follow=True,
    )
    button = client.post(f"{CHANGELIST}{waiting.pk}/lifecycle/resume/", follow=True)

    assert action.status_code == 200
    assert button.status_code == 200
    for response in (action, button):
        assert "@waiting" in response.content.decode()
        assert "free plan allows 1 personal agents" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == "archived"
    assert not AuditEntry.objects.filter(action="agent.resumed").exists()


def test_archive_is_a_bulk_action_of_the_admin_role() -> None:
    client, _ = staff_client("admin", "boss")
    agents = [AgentFactory.create(owner_id="u1") for _ in range(3)]

    response = client.post(
        CHANGELIST,
        {
            "action": "archive_selected",
            "_selected_action": [str(a.pk) for a in agents[:2]],
        },
    )

    assert response.status_code == 302
    statuses = {a.handle: a.status for a in A1Agent.objects.all()}
    assert statuses == {
        agents[0].handle: "archived",
        agents[1].handle: "archived",
        agents[2].handle: "active",
    }
    assert AuditEntry.objects.filter(action="agent.archived").count() == 2


def test_rotating_the_key_shows_the_new_key_once_and_the_old_one_stops_working(
    api_client: APIClient,
) -> None:
    client, _ = staff_client("admin", "boss")
    agent, old_key = agent_create(owner_id="u1", name="K", handle="key_bot", agent_type="work")

    response = client.post(f"{CHANGELIST}{agent.pk}/lifecycle/rotate-key/", follow=True)
    html = response.content.decode()
    (new_key,) = re.findall(r"a1app_[A-Za-z0-9_-]{43}", html)
    again = client.get(change_url(agent)).content.decode()

    assert new_key != old_key
    assert new_key not in again
    old = api_client.post(
        "/api/v1/usage/events/", {"id": "e1"}, format="json", HTTP_AUTHORIZATION=f"Bearer {old_key}"
    )
    new = api_client.post(
        "/api/v1/usage/events/", {"id": "e1"}, format="json", HTTP_AUTHORIZATION=f"Bearer {new_key}"
    )
    assert old.status_code == 401
    assert new.status_code == 202
    entry = AuditEntry.objects.get(action="app_key.rotated")
    assert entry.target_type == "app_key"
    assert new_key not in str(entry.changes)
    assert entry.changes["key_prefix"]["after"] == new_key[:12]


def test_admin_role_edits_an_agent_through_the_service_and_reserved_handles_are_refused() -> None:
    client, _ = staff_client("admin", "boss")
    agent, _ = agent_create(
        owner_id="u1", name="Old", handle="edit_me", agent_type="work", email="old@example.com"
    )
    form = {
        "name": "New name",
        "handle": "edit_me",
        "agent_type": "work",
        "email": "new@example.com",
        "onboarding_data": "null",
        "settings": "{}",
    }

    saved = client.post(change_url(agent), form)
    refused = client.post(change_url(agent), {**form, "handle": "admin"})

    assert saved.status_code == 302
    agent.refresh_from_db()
    assert (agent.name, agent.email) == ("New name", "new@example.com")
    entry = AuditEntry.objects.get(action="agent.updated")
    assert entry.actor_kind == "staff"
    assert entry.changes["name"] == {"before": "Old", "after": "New name"}
    assert entry.changes["email"] == {"before": "[redacted]", "after": "[redacted]"}
    assert refused.status_code == 200
    assert "reserved" in refused.content.decode()


def test_admin_role_adds_an_agent_with_its_app_and_sees_the_key_once() -> None:
    client, _ = staff_client("admin", "boss")

    response = client.post(
        f"{CHANGELIST}add/",
        {
            "owner_id": "u_new",
            "name": "Made by staff",
            "handle": "staff_made",
            "agent_type": "personal",
            "onboarding_data": "null",
            "settings": "{}",
        },
        follow=True,
    )

    agent = A1Agent.objects.get(handle="staff_made")
    assert response.status_code == 200
    assert re.search(r"a1app_[A-Za-z0-9_-]{43}", response.content.decode())
    assert App.objects.get(pk=agent.app_id).agent_id == agent.pk
    assert AuditEntry.objects.get(action="agent.created").agent_id == agent.pk


def test_admin_role_deletes_through_the_service_and_the_trail_survives_the_agent() -> None:
    client, _ = staff_client("admin", "boss")
    agent, _ = agent_create(owner_id="u1", name="Gone", handle="gone_bot", agent_type="work")

    response = client.post(f"{CHANGELIST}{agent.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not A1Agent.objects.filter(pk=agent.pk).exists()
    assert not App.objects.filter(pk=agent.app_id).exists()
    entry = AuditEntry.objects.get(action="agent.deleted")
    assert entry.agent_id == agent.pk
    assert entry.changes["handle"] == {"before": "gone_bot", "after": None}


def test_adding_an_agent_whose_owner_is_a_team_id_is_refused_with_a_message() -> None:
    """A team's agent is made by a member through the API (team_id = owner_id); an agent
    owned by a team's id without the team would reach every member of it."""
    from teams.services import team_sync

    team_sync(
        team_id="team-staff", display_name="Staff's", profile_image_url=None,
        event_at=timezone.now(), event_id="msg_1",
    )  # fmt: skip
    client, _ = staff_client("admin", "boss")

    response = client.post(
        f"{CHANGELIST}add/",
        {
            "owner_id": "team-staff", "name": "Team's?", "handle": "staff_for_team",
            "agent_type": "personal", "onboarding_data": "null", "settings": "{}",
        },
        follow=True,
    )  # fmt: skip

    assert not A1Agent.objects.filter(handle="staff_for_team").exists()
    assert "is a team" in response.content.decode()
