"""Every route of the API, tried by callers who must not reach owner A's data.

The routes come from the OpenAPI schema, so a new endpoint is covered the day it appears.
Each is called with no authentication, as another owner, as another agent's app, and as a
staff member without a role group. None may answer 5xx, show any of A's identifiers, or
change anything of A's.
"""

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create
from conversations.models import AgentConversation
from integrations.models import AgentIntegration
from tests.factories import ConversationFactory, IntegrationFactory, MessageFactory

pytestmark = pytest.mark.django_db

PUBLIC = {"/api/v1/plans/", "/api/v1/handles/{handle}/", "/api/v1/public/agents/{handle}/"}


def operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (path, method.upper())
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "put", "delete"}
    )


@pytest.fixture
def owner_a() -> dict[str, Any]:
    agent, _ = agent_create(
        owner_id="owner_a", name="Private Agent", handle="private_agent_a",
        agent_type="work", email="secret-a@example.com",
    )  # fmt: skip
    conversation = ConversationFactory.create(agent=agent, external_user_id="a-customer")
    MessageFactory.create(conversation=conversation, content="a's private message")
    integration = IntegrationFactory.create(agent=agent, provider="telegram")
    A1Agent.objects.filter(pk=agent.pk).update(status="paused")
    return {"agent": agent, "conversation": conversation, "integration": integration}


def path_for(template: str, a: dict[str, Any]) -> str:
    """Fill the path's parameters with A's objects (the one the route is about)."""
    if template.startswith("/api/v1/conversations/"):
        target = a["conversation"].pk
    elif template.startswith("/api/v1/integrations/"):
        target = a["integration"].pk
    else:
        target = a["agent"].pk
    path = template.replace("{handle}", a["agent"].handle)
    return re.sub(r"\{[a-z_]+\}", str(target), path)


def callers(owner_headers: Any) -> dict[str, tuple[APIClient, dict[str, str]]]:
    _, other_key = agent_create(owner_id="owner_b", name="B", handle="agent_b", agent_type="work")
    staff = APIClient()
    staff.force_login(User.objects.create_user("no_role", password="pw", is_staff=True))
    return {
        "anonymous": (APIClient(), {}),
        "other owner": (APIClient(), owner_headers("owner_b")),
        "other agent's app": (APIClient(), {"HTTP_AUTHORIZATION": f"Bearer {other_key}"}),
        "staff without a role": (staff, {}),
    }


def secrets_of(a: dict[str, Any]) -> list[str]:
    return [
        str(a["agent"].pk), "private_agent_a", "owner_a", "secret-a@example.com",
        str(a["conversation"].pk), "a-customer", "a's private message", str(a["integration"].pk),
    ]  # fmt: skip


def test_no_route_lets_an_outsider_see_or_change_owner_as_data(
    owner_a: dict[str, Any], owner_headers: Any
) -> None:
    routes = operations()
    assert len(routes) > 20  # the schema really lists the API
    problems = []

    for name, (client, headers) in callers(owner_headers).items():
        for template, method in routes:
            if template in PUBLIC:
                continue
            path = path_for(template, owner_a)
            body = {"name": "pwned", "status": "archived", "agent": str(owner_a["agent"].pk),
                    "channel": "web", "role": "user", "content": "x"}  # fmt: skip
            response = getattr(client, method.lower())(path, body, format="json", **headers)
            text = response.content.decode(errors="replace")
            leaked = [secret for secret in secrets_of(owner_a) if secret in text]
            # 503 is a dependency deliberately absent here (Stripe unconfigured), not a fault.
            if (
                response.status_code in range(500, 503)
                or response.status_code > 503
                or leaked
                or (200 <= response.status_code < 300 and "{" in template)
            ):
                problems.append((name, method, template, response.status_code, leaked))

    assert problems == []
    agent = A1Agent.objects.get(pk=owner_a["agent"].pk)
    assert (agent.status, agent.name) == ("paused", "Private Agent")
    assert AgentConversation.objects.get(pk=owner_a["conversation"].pk).status == "active"
    assert AgentIntegration.objects.filter(pk=owner_a["integration"].pk).exists()


def test_anonymous_callers_get_401_on_every_private_route(owner_a: dict[str, Any]) -> None:
    wrong = [
        (method, template)
        for template, method in operations()
        if template not in PUBLIC
        and getattr(APIClient(), method.lower())(
            path_for(template, owner_a), {}, format="json"
        ).status_code
        != 401
    ]

    assert wrong == []


def test_the_public_profile_of_an_agent_shows_nothing_private(owner_a: dict[str, Any]) -> None:
    A1Agent.objects.filter(pk=owner_a["agent"].pk).update(status="active")

    text = APIClient().get("/api/v1/public/agents/PRIVATE_AGENT_A/").content.decode()

    assert "Private Agent" in text
    for private in ("owner_a", "secret-a@example.com", "a-customer"):
        assert private not in text
