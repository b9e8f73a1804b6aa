"""The agents API: create, read, update, lifecycle, keys, delete, as owners and staff see it."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents.models import A1Agent, App
from billing.models import UserSubscription
from conversations.models import AgentConversation, Message
from integrations.models import AgentIntegration
from tests.factories import (
    AgentFactory,
    ConversationFactory,
    IntegrationFactory,
    MessageFactory,
    UsageFactory,
)
from usage.models import AgentUsage

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]


def nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        document = {"level": document}
    return document


def agent_body(**overrides: Any) -> dict[str, Any]:
    body = {"name": "Helper", "handle": "helper_bot", "agent_type": "personal"}
    body.update(overrides)
    return body


def create_agent(
    api_client: APIClient, owner_headers: Headers, sub: str = "user_1", **overrides: Any
) -> Any:
    return api_client.post(
        "/api/v1/agents/", agent_body(**overrides), format="json", **owner_headers(sub)
    )


# --- create ----------------------------------------------------------------------------------


def test_owner_creates_an_agent_with_its_app_and_sees_the_key_once(
    api_client: APIClient, owner_headers: Headers
) -> None:
    response = create_agent(api_client, owner_headers, email="Bot@Example.com")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner_id"] == "user_1"
    assert body["handle"] == "helper_bot"
    assert body["status"] == "active"
    assert body["email"] == "Bot@Example.com"
    assert body["app_key"].startswith("a1app_")
    assert body["app"]["key_prefix"] == body["app_key"][:12]
    agent = A1Agent.objects.select_related("app").get(pk=body["id"])
    assert agent.app.agent_id == agent.pk
    assert body["app_key"] not in str(App.objects.filter(pk=agent.app_id).values().get())

    again = api_client.get(f"/api/v1/agents/{body['id']}/", **owner_headers("user_1"))
    assert "app_key" not in again.json()


def test_create_requires_the_mandatory_fields(
    api_client: APIClient, owner_headers: Headers
) -> None:
    response = api_client.post("/api/v1/agents/", {}, format="json", **owner_headers())

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["errors"]) == {"name", "handle", "agent_type"}
    assert not A1Agent.objects.exists()
    assert not App.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("agent_type", "team"),
        ("email", "not-an-email"),
        ("phone_number", "call me"),
        ("avatar_url", "javascript:alert(1)"),
        ("settings", ["not", "an", "object"]),
        ("settings", {"deep": nested(25)}),
        ("onboarding_data", {"big": "x" * 70_000}),
        ("onboarding_data", {"nul": "a\x00b"}),
        ("name", "a\x00b"),
        ("status", "paused"),
        ("owner_id", "someone_else"),
        ("handel", "typo"),
    ],
)  # fmt: skip
def test_bad_fields_answer_400_naming_the_field_and_write_nothing(
    api_client: APIClient, owner_headers: Headers, field: str, value: Any
) -> None:
    response = create_agent(api_client, owner_headers, **{field: value})

    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"]
    assert not A1Agent.objects.exists()


# --- handles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handle", ["ab", "x" * 31, "has-dash", "has space", "émile", "admin", "Support", "API"]
)
def test_invalid_or_reserved_handles_are_refused_on_the_handle_field(
    api_client: APIClient, owner_headers: Headers, handle: str
) -> None:
    response = create_agent(api_client, owner_headers, handle=handle)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["handle"]


def test_handles_are_unique_regardless_of_case(
    api_client: APIClient, owner_headers: Headers
) -> None:
    AgentFactory.create(handle="Helper_Bot", owner_id="someone")

    response = create_agent(api_client, owner_headers, handle="helper_BOT")

    assert response.status_code == 400
    assert response.json()["errors"]["handle"] == ["This handle is already taken."]
    assert A1Agent.objects.count() == 1
    assert App.objects.count() == 1


def test_handle_availability(api_client: APIClient) -> None:
    AgentFactory.create(handle="Taken_One")

    def check(handle: str) -> dict[str, Any]:
        response = api_client.get(f"/api/v1/handles/{handle}/")
        assert response.status_code == 200
        return response.json()

    assert check("free_one") == {
        "handle": "free_one", "available": True, "reason": None, "detail": None,
    }  # fmt: skip
    assert check("taken_ONE")["reason"] == "taken"
    assert check("admin")["reason"] == "reserved"
    assert check("no")["reason"] == "invalid"
    assert check("bad-handle")["available"] is False


def test_owner_can_change_the_handle_but_not_to_a_taken_one(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent = AgentFactory.create(owner_id="user_1", handle="first_name")
    AgentFactory.create(handle="other_name")
    url = f"/api/v1/agents/{agent.pk}/"

    renamed = api_client.patch(url, {"handle": "Second_Name"}, format="json", **owner_headers())
    clash = api_client.patch(url, {"handle": "OTHER_name"}, format="json", **owner_headers())

    assert renamed.status_code == 200
    assert renamed.json()["handle"] == "Second_Name"
    assert clash.status_code == 400
    assert A1Agent.objects.get(pk=agent.pk).handle == "Second_Name"


# --- plan limits -----------------------------------------------------------------------------


def test_free_plan_allows_one_personal_and_one_work_agent(
    api_client: APIClient, owner_headers: Headers
) -> None:
    assert create_agent(api_client, owner_headers, handle="p_one").status_code == 201
    assert (
        create_agent(api_client, owner_headers, handle="w_one", agent_type="work").status_code
        == 201
    )

    refused = create_agent(api_client, owner_headers, handle="p_two")

    assert refused.status_code == 403
    body = refused.json()
    assert body["code"] == "agent_limit_reached"
    assert (body["limit"], body["count"], body["scope"], body["plan"]) == (
        1, 1, "personal", "free",
    )  # fmt: skip
    assert A1Agent.objects.count() == 2


def test_pro_plan_allows_five_of_each_type(api_client: APIClient, owner_headers: Headers) -> None:
    UserSubscription.objects.create(
        user_id="user_1", plan_id="pro", max_personal_agents=5, max_work_agents=5,
        max_total_agents=10,
    )  # fmt: skip

    created = [
        create_agent(api_client, owner_headers, handle=f"p_{n}").status_code for n in range(6)
    ]

    assert created == [201] * 5 + [403]


def test_enterprise_plan_is_unlimited(api_client: APIClient, owner_headers: Headers) -> None:
    UserSubscription.objects.create(
        user_id="user_1", plan_id="enterprise", max_personal_agents=-1, max_work_agents=-1,
        max_total_agents=-1,
    )  # fmt: skip

    created = {
        create_agent(api_client, owner_headers, handle=f"p_{n}").status_code for n in range(12)
    }

    assert created == {201}


def test_subscription_row_overrides_the_plan_and_null_falls_back_to_it(
    api_client: APIClient, owner_headers: Headers
) -> None:
    UserSubscription.objects.create(
        user_id="user_1", plan_id="free", max_personal_agents=None, max_work_agents=3,
        max_total_agents=3,
    )  # fmt: skip

    work = [
        create_agent(api_client, owner_headers, handle=f"w_{n}", agent_type="work").status_code
        for n in range(4)
    ]
    personal = create_agent(api_client, owner_headers, handle="p_0")

    assert work == [201, 201, 201, 403]
    assert personal.status_code == 403
    assert personal.json()["scope"] == "total"


def test_archived_agents_do_not_count_and_unarchiving_past_the_limit_is_refused(
    api_client: APIClient, owner_headers: Headers
) -> None:
    first = create_agent(api_client, owner_headers, handle="p_one").json()
    archived = api_client.post(f"/api/v1/agents/{first['id']}/archive/", **owner_headers())
    second = create_agent(api_client, owner_headers, handle="p_two")

    unarchive = api_client.post(f"/api/v1/agents/{first['id']}/resume/", **owner_headers())

    assert archived.json()["status"] == "archived"
    assert second.status_code == 201
    assert unarchive.status_code == 403
    assert unarchive.json()["code"] == "agent_limit_reached"
    assert A1Agent.objects.get(pk=first["id"]).status == "archived"


def test_paused_agents_count_and_resume_within_the_limit(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent = create_agent(api_client, owner_headers, handle="p_one").json()
    paused = api_client.post(f"/api/v1/agents/{agent['id']}/pause/", **owner_headers())
    blocked = create_agent(api_client, owner_headers, handle="p_two")

    resumed = api_client.post(f"/api/v1/agents/{agent['id']}/resume/", **owner_headers())

    assert paused.json()["status"] == "paused"
    assert blocked.status_code == 403
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "active"


def test_changing_type_counts_against_the_new_types_limit(
    api_client: APIClient, owner_headers: Headers
) -> None:
    personal = create_agent(api_client, owner_headers, handle="p_one").json()
    create_agent(api_client, owner_headers, handle="w_one", agent_type="work")

    response = api_client.patch(
        f"/api/v1/agents/{personal['id']}/", {"agent_type": "work"}, format="json",
        **owner_headers(),
    )  # fmt: skip

    assert response.status_code == 403
    assert A1Agent.objects.get(pk=personal["id"]).agent_type == "personal"


def test_downgrade_keeps_agents_and_only_blocks_new_ones(
    api_client: APIClient, owner_headers: Headers
) -> None:
    UserSubscription.objects.create(
        user_id="user_1", plan_id="pro", max_personal_agents=5, max_work_agents=5,
        max_total_agents=10,
    )  # fmt: skip
    for n in range(3):
        create_agent(api_client, owner_headers, handle=f"p_{n}")
    UserSubscription.objects.filter(user_id="user_1").update(
        plan_id="free", max_personal_agents=1, max_work_agents=1, max_total_agents=2
    )

    listed = api_client.get("/api/v1/agents/", **owner_headers())
    refused = create_agent(api_client, owner_headers, handle="p_9")

    assert len(listed.json()["results"]) == 3
    assert refused.status_code == 403


def test_pause_of_archived_agent_is_a_conflict(
    api_client: APIClient, owner_headers: Headers
) -> None:
    agent = AgentFactory.create(owner_id="user_1", status="archived")

    response = api_client.post(f"/api/v1/agents/{agent.pk}/pause/", **owner_headers())

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_status_transition"


# --- list, filters, query count --------------------------------------------------------------


def test_list_shows_only_own_agents_newest_first_with_filters(
    api_client: APIClient, owner_headers: Headers
) -> None:
    mine = [AgentFactory.create(owner_id="user_1", handle=f"mine_{n}") for n in range(3)]
    A1Agent.objects.filter(pk=mine[0].pk).update(status="paused", agent_type="work")
    AgentFactory.create(owner_id="user_2")

    everything = api_client.get("/api/v1/agents/", **owner_headers())
    paused = api_client.get("/api/v1/agents/?status=paused", **owner_headers())
    work = api_client.get("/api/v1/agents/?agent_type=work", **owner_headers())
    bad = api_client.get("/api/v1/agents/?status=deleted", **owner_headers())

    assert [a["handle"] for a in everything.json()["results"]] == ["mine_2", "mine_1", "mine_0"]
    assert [a["handle"] for a in paused.json()["results"]] == ["mine_0"]
    assert [a["handle"] for a in work.json()["results"]] == ["mine_0"]
    assert bad.status_code == 400
    assert bad.json()["code"] == "validation_error"


def test_list_pages_with_a_cursor(api_client: APIClient, owner_headers: Headers) -> None:
    for n in range(5):
        AgentFactory.create(owner_id="user_1", handle=f"page_{n}")

    first = api_client.get("/api/v1/agents/?page_size=2", **owner_headers()).json()
    second = api_client.get(first["next"], **owner_headers()).json()

    assert [a["handle"] for a in first["results"]] == ["page_4", "page_3"]
    assert [a["handle"] for a in second["results"]] == ["page_2", "page_1"]


def test_agent_list_runs_a_constant_number_of_queries(
    api_client: APIClient, owner_headers: Headers
) -> None:
    headers = owner_headers()
    AgentFactory.create(owner_id="user_1", email="one@example.com")
    api_client.get("/api/v1/agents/", **headers)  # warm the JWKS and user-mirror caches
    with CaptureQueriesContext(connection) as one_agent:
        api_client.get("/api/v1/agents/", **headers)
    for n in range(49):
        AgentFactory.create(owner_id="user_1", email=f"{n}@example.com")

    with CaptureQueriesContext(connection) as fifty_agents:
        response = api_client.get("/api/v1/agents/", **headers)

    assert len(response.json()["results"]) == 50
    queries = [query["sql"] for query in fifty_agents.captured_queries]
    assert len(fifty_agents) == len(one_agent) <= 2, queries


# --- other owners, anonymous, apps, staff ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""), ("patch", ""), ("delete", ""), ("post", "pause/"), ("post", "resume/"),
        ("post", "archive/"), ("post", "rotate-key/"),
    ],
)  # fmt: skip
def test_another_owners_agent_is_404_on_every_route(
    api_client: APIClient, owner_headers: Headers, method: str, suffix: str
) -> None:
    agent = AgentFactory.create(owner_id="user_2", status="paused")

    response = getattr(api_client, method)(
        f"/api/v1/agents/{agent.pk}/{suffix}", {"name": "x"}, format="json", **owner_headers()
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "user_2" not in response.content.decode()
    agent.refresh_from_db()
    assert (agent.status, agent.name) == ("paused", agent.name)
    assert A1Agent.objects.filter(pk=agent.pk).exists()


def test_anonymous_callers_get_401_not_authenticated(api_client: APIClient) -> None:
    agent = AgentFactory.create()

    for response in (
        api_client.get("/api/v1/agents/"),
        api_client.post("/api/v1/agents/", agent_body(), format="json"),
        api_client.get(f"/api/v1/agents/{agent.pk}/"),
    ):
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_app_key_cannot_use_the_owner_api(api_client: APIClient, owner_headers: Headers) -> None:
    created = create_agent(api_client, owner_headers).json()
    app = {"HTTP_AUTHORIZATION": f"Bearer {created['app_key']}"}

    listed = api_client.get("/api/v1/agents/", **app)
    deleted = api_client.delete(f"/api/v1/agents/{created['id']}/", **app)

    assert listed.status_code == 403
    assert listed.json()["code"] == "permission_denied"
    assert deleted.status_code == 403
    assert A1Agent.objects.filter(pk=created["id"]).exists()


def test_support_staff_session_sees_and_manages_every_agent_but_cannot_delete(
    api_client: APIClient,
) -> None:
    staff = User.objects.create_user("support", password="pw", is_staff=True)
    staff.groups.add(Group.objects.get_or_create(name="support")[0])
    agents = [AgentFactory.create(owner_id=f"user_{n}") for n in range(3)]
    api_client.force_login(staff)

    listed = api_client.get("/api/v1/agents/")
    paused = api_client.post(f"/api/v1/agents/{agents[0].pk}/pause/")
    create = api_client.post("/api/v1/agents/", agent_body(), format="json")

    assert len(listed.json()["results"]) == 3
    assert paused.json()["status"] == "paused"
    assert create.status_code == 403
    assert api_client.delete(f"/api/v1/agents/{agents[1].pk}/").status_code == 403
    assert A1Agent.objects.filter(pk=agents[1].pk).exists()


def test_admin_staff_may_delete_through_the_api(api_client: APIClient) -> None:
    staff = User.objects.create_user("boss", password="pw", is_staff=True)
    staff.groups.add(Group.objects.get_or_create(name="admin")[0])
    agent = AgentFactory.create()
    api_client.force_login(staff)

    assert api_client.delete(f"/api/v1/agents/{agent.pk}/").status_code == 204


def test_staff_without_a_role_group_sees_nothing(api_client: APIClient) -> None:
    api_client.force_login(User.objects.create_user("newhire", password="pw", is_staff=True))
    AgentFactory.create()

    assert api_client.get("/api/v1/agents/").status_code == 403


def test_non_staff_django_user_sees_nothing(api_client: APIClient) -> None:
    user = User.objects.create_user("customer", password="pw")
    AgentFactory.create()
    api_client.force_login(user)

    assert api_client.get("/api/v1/agents/").status_code == 403


# --- delete, keys, encryption, public profile ------------------------------------------------


def test_delete_removes_the_agent_its_app_and_all_its_data(
    api_client: APIClient, owner_headers: Headers
) -> None:
    created = create_agent(api_client, owner_headers).json()
    agent = A1Agent.objects.get(pk=created["id"])
    UsageFactory.create(agent=agent)
    MessageFactory.create(conversation=ConversationFactory.create(agent=agent))
    IntegrationFactory.create(agent=agent)

    response = api_client.delete(f"/api/v1/agents/{agent.pk}/", **owner_headers())

    assert response.status_code == 204
    assert not A1Agent.objects.filter(pk=agent.pk).exists()
    assert not App.objects.filter(pk=agent.app_id).exists()
    for model in (AgentUsage, AgentConversation, Message, AgentIntegration):
        assert not model.objects.filter(agent_id=agent.pk).exists()
    assert (
        api_client.get("/api/v1/agents/", HTTP_AUTHORIZATION=f"Bearer {created['app_key']}")
    ).status_code == 401


def test_rotating_the_key_stops_the_old_one_at_once(
    api_client: APIClient, owner_headers: Headers
) -> None:
    created = create_agent(api_client, owner_headers).json()

    rotated = api_client.post(f"/api/v1/agents/{created['id']}/rotate-key/", **owner_headers())

    new_key = rotated.json()["app_key"]
    assert rotated.status_code == 200
    assert new_key != created["app_key"]
    assert rotated.json()["app"]["key_prefix"] == new_key[:12]
    old = api_client.get("/api/v1/agents/", HTTP_AUTHORIZATION=f"Bearer {created['app_key']}")
    new = api_client.get("/api/v1/agents/", HTTP_AUTHORIZATION=f"Bearer {new_key}")
    assert old.status_code == 401
    assert new.status_code == 403  # authenticated as the app, which may not list agents


def test_contact_details_are_encrypted_in_the_database_row(
    api_client: APIClient, owner_headers: Headers
) -> None:
    created = create_agent(
        api_client, owner_headers, email="secret.person@example.com",
        phone_number="+1 555 0100", whatsapp_number="+44 20 7946 0000",
    ).json()  # fmt: skip

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(a)::text FROM a1_agents a WHERE id = %s", [created["id"]]
        )
        (row,) = cursor.fetchone()

    for plaintext in ("secret.person", "example.com", "555 0100", "7946"):
        assert plaintext not in row
    read = api_client.get(f"/api/v1/agents/{created['id']}/", **owner_headers()).json()
    assert read["email"] == "secret.person@example.com"
    assert read["phone_number"] == "+1 555 0100"
    assert read["whatsapp_number"] == "+44 20 7946 0000"


def test_public_profile_shows_an_active_agent_without_private_fields(
    api_client: APIClient,
) -> None:
    AgentFactory.create(
        handle="Public_Bot", email="hidden@example.com", phone_number="+15550100",
        onboarding_data={"secret": "x"},
    )  # fmt: skip

    response = api_client.get("/api/v1/public/agents/public_bot/")

    assert response.status_code == 200
    assert response.json()["handle"] == "Public_Bot"
    for private in ("email", "phone_number", "whatsapp_number", "owner_id", "settings",
                    "onboarding_data"):  # fmt: skip
        assert private not in response.json()
    assert "hidden@example.com" not in response.content.decode()


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_public_profile_of_inactive_or_unknown_agent_is_404(
    api_client: APIClient, status: str
) -> None:
    AgentFactory.create(handle="quiet_bot", status=status)

    assert api_client.get("/api/v1/public/agents/quiet_bot/").status_code == 404
    assert api_client.get("/api/v1/public/agents/nobody_here/").status_code == 404


def test_public_endpoints_ignore_a_broken_token(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/handles/some_name/", HTTP_X_STACK_ACCESS_TOKEN="garbage")

    assert response.status_code == 200
