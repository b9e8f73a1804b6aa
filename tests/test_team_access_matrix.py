"""Every route that touches an agent or anything under it, called on a team's agent by each
member role, by a removed member, by a member of another team, and by a member left off the
agent when it is restricted (docs/teams.md).

The routes come from the OpenAPI schema: a new route under an agent, a conversation or an
integration fails `test_every_agent_route_says_which_team_role_it_needs` until it is listed
here. A member whose role is high enough succeeds; a lower role is 403 and changes nothing;
a removed member and another team's member get 404 and see nothing of the agent.
"""

import re
from typing import Any

import pytest
from rest_framework.test import APIClient

from agent_templates.services import template_clone, template_create, template_publish_version
from agents.models import A1Agent, AgentMember, App
from agents.services import agent_access_set, agent_create, agent_update
from conversations.models import AgentConversation
from integrations.models import AgentIntegration
from teams.roles import Role
from tests.factories import ConversationFactory, IntegrationFactory, MessageFactory
from tests.teams_world import TEAM, team_world
from tests.test_access_matrix import operations

pytestmark = pytest.mark.django_db

# Members may not call it whatever their role (403); outsiders get 404, or 403 where only an
# app key passes the route's permission at all.
APP_ONLY = "app only"

# (method, route) -> the lowest team role that may call it.
TEAM_NEEDS: dict[tuple[str, str], Role | str] = {
    ("GET", "/api/v1/agents/{id}/"): Role.VIEWER,
    ("PATCH", "/api/v1/agents/{id}/"): Role.EDITOR,
    ("DELETE", "/api/v1/agents/{id}/"): Role.MANAGER,
    ("POST", "/api/v1/agents/{id}/pause/"): Role.EDITOR,
    ("POST", "/api/v1/agents/{id}/resume/"): Role.EDITOR,
    ("POST", "/api/v1/agents/{id}/archive/"): Role.EDITOR,
    ("POST", "/api/v1/agents/{id}/rotate-key/"): Role.MANAGER,
    ("GET", "/api/v1/agents/{id}/access/"): Role.VIEWER,
    ("PUT", "/api/v1/agents/{id}/access/"): Role.ADMIN,
    ("POST", "/api/v1/agents/{id}/move/"): Role.MANAGER,
    ("GET", "/api/v1/agents/{agent_id}/audit/"): Role.VIEWER,
    ("GET", "/api/v1/agents/{agent_id}/usage/"): Role.VIEWER,
    ("GET", "/api/v1/agents/{agent_id}/analytics/"): Role.VIEWER,
    ("GET", "/api/v1/agents/{agent_id}/template/"): Role.VIEWER,
    ("POST", "/api/v1/agents/{agent_id}/template/apply/"): Role.EDITOR,
    ("GET", "/api/v1/conversations/"): Role.VIEWER,
    ("POST", "/api/v1/conversations/"): APP_ONLY,
    ("GET", "/api/v1/conversations/{id}/"): Role.VIEWER,
    ("PATCH", "/api/v1/conversations/{id}/"): Role.EDITOR,
    ("POST", "/api/v1/conversations/{id}/archive/"): Role.EDITOR,
    ("GET", "/api/v1/conversations/{conversation_id}/messages/"): Role.VIEWER,
    ("POST", "/api/v1/conversations/{conversation_id}/messages/"): APP_ONLY,
    ("GET", "/api/v1/conversations/{conversation_id}/export/"): Role.VIEWER,
    ("GET", "/api/v1/integrations/"): Role.VIEWER,
    ("POST", "/api/v1/integrations/"): Role.MANAGER,
    ("GET", "/api/v1/integrations/{id}/"): Role.VIEWER,
    ("PATCH", "/api/v1/integrations/{id}/"): Role.MANAGER,
    ("DELETE", "/api/v1/integrations/{id}/"): Role.MANAGER,
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/agents/{id}/move/"): {"team": None},  # to the caller's own account
    ("PUT", "/api/v1/agents/{id}/access/"): {
        "access": "restricted",
        "members": [{"user_id": "viewer", "role": "viewer"}],
    },
    ("PATCH", "/api/v1/agents/{id}/"): {"name": "Changed by a member"},
    ("PATCH", "/api/v1/conversations/{id}/"): {"metadata": {"by": "member"}},
    ("PATCH", "/api/v1/integrations/{id}/"): {"status": "disabled"},
    ("POST", "/api/v1/conversations/{conversation_id}/messages/"): {"role": "user", "content": "x"},
    ("POST", "/api/v1/agents/{agent_id}/template/apply/"): {"overwrite": []},
}
QUERIES = {
    "/api/v1/conversations/": "?agent={agent}",
    "/api/v1/integrations/": "?agent={agent}",
    "/api/v1/conversations/{conversation_id}/export/": "?format=jsonl",
}
MEMBERS = {
    "viewer": Role.VIEWER,
    "editor": Role.EDITOR,
    "manager": Role.MANAGER,
    "admin": Role.ADMIN,
    "excluded": Role.EDITOR,
}
OUTSIDERS = ("removed", "outsider")
# On the restricted agent, everyone but `excluded` is listed with their team role (the admin
# need not be: admins reach every agent of the team).
LISTED = {"viewer": "viewer", "editor": "editor", "manager": "manager"}
AGENT_ROUTES = re.compile(r"^/api/v1/(agents/\{|conversations/|integrations/)")


@pytest.fixture(params=["team", "restricted"])
def team_agent(request: pytest.FixtureRequest) -> dict[str, Any]:
    team_world()
    # Cloned into the team from another user's unlisted template, which has a newer version.
    source, _ = agent_create(owner_id="author", name="S", handle="kit_source", agent_type="work")
    template = template_create(
        owner_id="author", agent_id=source.pk, slug="team_kit", name="Kit", visibility="unlisted"
    )
    agent, _ = template_clone(
        template=template, owner_id=TEAM, team_id=TEAM, name="Team Agent",
        handle="team_secret_agent", agent_type="work",
    )  # fmt: skip
    agent = agent_update(agent=agent, email="team-secret@example.com")
    agent_update(agent=source, description="Newer.")
    template_publish_version(template=template, changelog="newer")
    A1Agent.objects.filter(pk=agent.pk).update(status="paused")
    conversation = ConversationFactory.create(agent=agent, external_user_id="team-customer")
    MessageFactory.create(conversation=conversation, content="the team's private message")
    integration = IntegrationFactory.create(agent=agent, provider="telegram")
    if request.param == "restricted":
        agent_access_set(agent=agent, access="restricted", members=LISTED)
    return {
        "agent": agent, "conversation": conversation, "integration": integration,
        "restricted": request.param == "restricted",
    }  # fmt: skip


def path_for(template: str, objects: dict[str, Any]) -> str:
    if template.startswith("/api/v1/conversations/"):
        target = objects["conversation"].pk
    elif template.startswith("/api/v1/integrations/"):
        target = objects["integration"].pk
    else:
        target = objects["agent"].pk
    path = re.sub(r"\{[a-z_]+\}", str(target), template)
    return path + QUERIES.get(template, "").format(agent=objects["agent"].pk)


def body_for(method: str, template: str, objects: dict[str, Any]) -> dict[str, Any]:
    if (method, template) == ("POST", "/api/v1/integrations/"):
        return {
            "agent": str(objects["agent"].pk),
            "provider": "webhook",
            "config": {"url": "https://1.1.1.1/hook", "signing_secret": "whsec_abcdefSECRET1111"},
        }
    return BODIES.get((method, template), {})


def state_of(objects: dict[str, Any]) -> dict[str, Any]:
    agent = objects["agent"]
    return {
        "agent": A1Agent.objects.filter(pk=agent.pk)
        .values("name", "status", "access", "owner_id")
        .first(),
        "listed": sorted(AgentMember.objects.filter(agent_id=agent.pk).values_list("user_id")),
        "key": App.objects.filter(pk=agent.app_id).values("key_hash").first(),
        "conversation": AgentConversation.objects.filter(pk=objects["conversation"].pk)
        .values("status", "metadata")
        .first(),
        "integrations": sorted(
            AgentIntegration.objects.filter(agent_id=agent.pk).values_list("provider", "status")
        ),
    }


def secrets_of(objects: dict[str, Any]) -> list[str]:
    return [
        str(objects["agent"].pk), "team_secret_agent", "team-secret@example.com", TEAM,
        str(objects["conversation"].pk), "team-customer", "the team's private message",
        str(objects["integration"].pk),
    ]  # fmt: skip


def test_every_agent_route_says_which_team_role_it_needs() -> None:
    routes = {
        (method, template) for template, method in operations() if AGENT_ROUTES.match(template)
    }

    assert routes == set(TEAM_NEEDS)


@pytest.mark.parametrize("caller", [*MEMBERS, *OUTSIDERS])
@pytest.mark.parametrize(("method", "template"), sorted(TEAM_NEEDS))
def test_a_team_agent_route_answers_each_caller_by_their_role(
    team_agent: dict[str, Any], owner_headers: Any, caller: str, method: str, template: str
) -> None:
    needs = TEAM_NEEDS[(method, template)]
    before = state_of(team_agent)

    response = getattr(APIClient(), method.lower())(
        path_for(template, team_agent),
        body_for(method, template, team_agent),
        format="json",
        **owner_headers(caller),
    )

    status = response.status_code
    if caller in OUTSIDERS or (caller == "excluded" and team_agent["restricted"]):
        assert status == 404 or (needs == APP_ONLY and status == 403), response.content[:300]
        text = response.content.decode(errors="replace")
        assert [secret for secret in secrets_of(team_agent) if secret in text] == []
        assert state_of(team_agent) == before
    elif not isinstance(needs, Role) or MEMBERS[caller] < needs:  # APP_ONLY, or too low
        assert (status, response.json()["code"]) == (403, "permission_denied"), response.content
        assert state_of(team_agent) == before
    else:
        assert 200 <= status < 300, response.content[:300]


def test_the_team_agents_list_shows_it_to_members_only(
    team_agent: dict[str, Any], owner_headers: Any
) -> None:
    for caller in [*MEMBERS, *OUTSIDERS]:
        response = APIClient().get("/api/v1/agents/", **owner_headers(caller))
        handles = [agent["handle"] for agent in response.json()["results"]]
        hidden = caller in OUTSIDERS or (caller == "excluded" and team_agent["restricted"])
        assert handles == ([] if hidden else ["team_secret_agent"]), caller


# The account routes that take `?team=<id>` -> the lowest team role that may read them. What
# they say about the account as a whole (its quota, messages, plan, billing) is the team's;
# what they say about single agents follows `reachable_by_owner`: a member left off a
# restricted agent sees no row of it, while the account's quota use stays whole.
ACCOUNT_NEEDS: dict[str, Role] = {
    "/api/v1/usage/summary/": Role.VIEWER,
    "/api/v1/analytics/summary/": Role.VIEWER,
    "/api/v1/subscription/": Role.VIEWER,
    "/api/v1/billing/events/": Role.ADMIN,
    "/api/v1/notifications/settings/": Role.ADMIN,
}
# The analytics summary filters the agents the caller may see: a team they are not in has none.
EMPTY_FOR_OUTSIDERS = {"/api/v1/analytics/summary/"}


@pytest.mark.parametrize("caller", [*MEMBERS, *OUTSIDERS])
@pytest.mark.parametrize("route", sorted(ACCOUNT_NEEDS))
def test_a_team_account_route_answers_each_caller_by_their_role_and_names_no_hidden_agent(
    team_agent: dict[str, Any], owner_headers: Any, caller: str, route: str
) -> None:
    from core.months import current_month
    from tests.factories import UsageFactory
    from usage.models import UserMonthlyUsage

    UsageFactory.create(agent=team_agent["agent"], message_count=7)
    UserMonthlyUsage.objects.create(user_id=TEAM, month=current_month(), message_count=7)

    response = APIClient().get(f"{route}?team={TEAM}", **owner_headers(caller))

    status, text = response.status_code, response.content.decode(errors="replace")
    agent = team_agent["agent"]
    hidden = caller in OUTSIDERS or (caller == "excluded" and team_agent["restricted"])
    if caller in OUTSIDERS and route not in EMPTY_FOR_OUTSIDERS:
        assert (status, response.json()["code"]) == (404, "not_found"), text[:300]
    elif caller not in OUTSIDERS and MEMBERS[caller] < ACCOUNT_NEEDS[route]:
        assert (status, response.json()["code"]) == (403, "permission_denied"), text[:300]
    else:
        assert status == 200, text[:300]
    if hidden:
        assert [s for s in (str(agent.pk), "team_secret_agent", "Team Agent") if s in text] == []
    if status == 200 and route == "/api/v1/usage/summary/":
        body = response.json()
        # The account's quota use is whole whoever reads it; the rows, and their totals, are
        # the agents the caller may see.
        assert body["messages_used"] == 7
        assert body["totals"]["messages"] == (0 if hidden else 7)
        handles = [row["handle"] for row in body["agents"]]
        assert handles == ([] if hidden else ["team_secret_agent"])
