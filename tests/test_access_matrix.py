"""Every route of the API, tried by callers who must not reach owner A's data, and by staff.

The routes come from the OpenAPI schema, so a new endpoint is covered the day it appears.
Each is called with no authentication, as another owner, as another agent's app, and as a
staff member without a role group. None may answer 5xx, show any of A's identifiers, or
change anything of A's.

Then each is called with a `support` and an `admin` session: `STAFF_MAY` says, for every
route, which role may (support reads, pauses and resumes; admin also changes, archives,
rotates keys and deletes; nobody on staff acts as an owner's account or as an app). A
route missing from `STAFF_MAY` fails the suite.
"""

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from agent_templates.models import AgentTemplate
from agent_templates.services import template_create
from agents.models import A1Agent, App
from agents.services import agent_create
from conversations.models import AgentConversation
from integrations.models import AgentIntegration
from notifications.models import WebhookEndpoint
from notifications.services import endpoint_create
from tests.factories import ConversationFactory, IntegrationFactory, MessageFactory

pytestmark = pytest.mark.django_db

PUBLIC = {"/api/v1/plans/", "/api/v1/handles/{handle}/", "/api/v1/public/agents/{handle}/"}
# Operations anyone may call on a path whose other methods are private: the marketplace.
PUBLIC_OPERATIONS = {("GET", "/api/v1/templates/"), ("GET", "/api/v1/templates/{slug}/")}


def is_public(method: str, template: str) -> bool:
    return template in PUBLIC or (method, template) in PUBLIC_OPERATIONS


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
    template = template_create(
        owner_id="owner_a", agent_id=agent.pk, slug="a_private_kit", name="A's kit"
    )
    A1Agent.objects.filter(pk=agent.pk).update(status="paused")
    endpoint, _secret = endpoint_create(
        owner_id="owner_a", url="https://1.1.1.1/a-hooks", description="a's receiver"
    )
    return {
        "agent": agent, "conversation": conversation, "integration": integration,
        "endpoint": endpoint, "template": template,
    }  # fmt: skip


def path_for(template: str, a: dict[str, Any]) -> str:
    """Fill the path's parameters with A's objects (the one the route is about)."""
    if template.startswith("/api/v1/conversations/"):
        target = a["conversation"].pk
    elif template.startswith("/api/v1/integrations/"):
        target = a["integration"].pk
    elif template.startswith("/api/v1/webhooks/"):
        target = a["endpoint"].pk
    else:
        target = a["agent"].pk
    path = template.replace("{handle}", a["agent"].handle).replace("{slug}", a["template"].slug)
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
        str(a["endpoint"].pk), "a-hooks", "a's receiver", "a_private_kit", "A's kit",
    ]  # fmt: skip


def test_no_route_lets_an_outsider_see_or_change_owner_as_data(
    owner_a: dict[str, Any], owner_headers: Any
) -> None:
    routes = operations()
    assert len(routes) > 20  # the schema really lists the API
    problems = []

    for name, (client, headers) in callers(owner_headers).items():
        for template, method in routes:
            if is_public(method, template):
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
    endpoint = WebhookEndpoint.objects.get(pk=owner_a["endpoint"].pk)
    assert (endpoint.secret, endpoint.enabled) == (owner_a["endpoint"].secret, True)
    kit = AgentTemplate.objects.get(pk=owner_a["template"].pk)
    assert (kit.name, kit.latest_version, kit.clone_count) == ("A's kit", 1, 0)


def test_anonymous_callers_get_401_on_every_private_route(owner_a: dict[str, Any]) -> None:
    wrong = [
        (method, template)
        for template, method in operations()
        if not is_public(method, template)
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


def test_the_marketplace_does_not_show_a_private_template(
    owner_a: dict[str, Any], owner_headers: Any
) -> None:
    listing = APIClient().get("/api/v1/templates/").content.decode()
    anonymous = APIClient().get("/api/v1/templates/a_private_kit/")
    other = APIClient().get("/api/v1/templates/a_private_kit/", **owner_headers("owner_b"))
    own_list = APIClient().get("/api/v1/templates/?owner=me", **owner_headers("owner_b"))

    assert (anonymous.status_code, other.status_code, own_list.status_code) == (404, 404, 200)
    for private in secrets_of(owner_a):
        for response in (anonymous, other, own_list):
            assert private not in response.content.decode()
        assert private not in listing
    assert APIClient().get("/api/v1/templates/?owner=me").status_code == 401


# --- staff: support and admin on every route -----------------------------------------------

BOTH = frozenset({"support", "admin"})
ADMIN = frozenset({"admin"})
NOBODY: frozenset[str] = frozenset()

# (method, route) -> the staff roles that may call it.
STAFF_MAY: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/agents/"): BOTH,
    ("POST", "/api/v1/agents/"): NOBODY,  # an agent is the signed-in owner's own
    ("GET", "/api/v1/agents/{agent_id}/analytics/"): BOTH,
    ("GET", "/api/v1/agents/{agent_id}/audit/"): BOTH,
    ("GET", "/api/v1/agents/{agent_id}/usage/"): BOTH,
    ("GET", "/api/v1/agents/{id}/"): BOTH,
    ("PATCH", "/api/v1/agents/{id}/"): ADMIN,
    ("DELETE", "/api/v1/agents/{id}/"): ADMIN,
    ("POST", "/api/v1/agents/{id}/archive/"): ADMIN,
    ("POST", "/api/v1/agents/{id}/pause/"): BOTH,
    ("POST", "/api/v1/agents/{id}/resume/"): BOTH,
    ("POST", "/api/v1/agents/{id}/rotate-key/"): ADMIN,
    # Who of a team may reach its agent is the team admins' to say.
    ("GET", "/api/v1/agents/{id}/access/"): NOBODY,
    ("PUT", "/api/v1/agents/{id}/access/"): NOBODY,
    ("POST", "/api/v1/agents/{id}/move/"): NOBODY,  # between an owner's and their teams' accounts
    ("POST", "/api/v1/billing/checkout/"): NOBODY,
    ("GET", "/api/v1/analytics/summary/"): NOBODY,  # an owner's own account
    ("GET", "/api/v1/billing/events/"): NOBODY,
    ("POST", "/api/v1/billing/portal/"): NOBODY,
    ("GET", "/api/v1/conversations/"): BOTH,
    ("POST", "/api/v1/conversations/"): NOBODY,  # apps open conversations
    ("GET", "/api/v1/conversations/{conversation_id}/export/"): BOTH,
    ("GET", "/api/v1/conversations/{conversation_id}/messages/"): BOTH,
    ("POST", "/api/v1/conversations/{conversation_id}/messages/"): NOBODY,
    ("GET", "/api/v1/conversations/{id}/"): BOTH,
    ("PATCH", "/api/v1/conversations/{id}/"): NOBODY,
    ("POST", "/api/v1/conversations/{id}/archive/"): NOBODY,
    ("GET", "/api/v1/integrations/"): BOTH,
    ("POST", "/api/v1/integrations/"): NOBODY,
    ("GET", "/api/v1/integrations/{id}/"): BOTH,
    ("PATCH", "/api/v1/integrations/{id}/"): ADMIN,
    ("DELETE", "/api/v1/integrations/{id}/"): ADMIN,
    ("GET", "/api/v1/subscription/"): NOBODY,
    ("POST", "/api/v1/usage/events/"): NOBODY,
    ("GET", "/api/v1/usage/summary/"): NOBODY,
    # An owner's own receivers and their log (staff read deliveries in the admin).
    ("GET", "/api/v1/webhooks/endpoints/"): NOBODY,
    ("POST", "/api/v1/webhooks/endpoints/"): NOBODY,
    ("GET", "/api/v1/webhooks/endpoints/{id}/"): NOBODY,
    ("PATCH", "/api/v1/webhooks/endpoints/{id}/"): NOBODY,
    ("DELETE", "/api/v1/webhooks/endpoints/{id}/"): NOBODY,
    ("POST", "/api/v1/webhooks/endpoints/{id}/ping/"): NOBODY,
    ("POST", "/api/v1/webhooks/endpoints/{id}/rotate-secret/"): NOBODY,
    ("POST", "/api/v1/webhooks/endpoints/{id}/replay/"): NOBODY,
    ("GET", "/api/v1/webhooks/deliveries/"): NOBODY,
    ("GET", "/api/v1/notifications/settings/"): NOBODY,
    ("PATCH", "/api/v1/notifications/settings/"): NOBODY,
    # Templates are the owners'; staff moderate them in the admin.
    ("GET", "/api/v1/agents/{agent_id}/template/"): NOBODY,
    ("POST", "/api/v1/agents/{agent_id}/template/apply/"): NOBODY,
    ("POST", "/api/v1/templates/"): NOBODY,
    ("PATCH", "/api/v1/templates/{slug}/"): NOBODY,
    ("DELETE", "/api/v1/templates/{slug}/"): NOBODY,
    ("POST", "/api/v1/templates/{slug}/clone/"): NOBODY,
    ("POST", "/api/v1/templates/{slug}/reports/"): NOBODY,
    ("POST", "/api/v1/templates/{slug}/versions/"): NOBODY,
}

# A body each route accepts (so an allowed call succeeds) and a query where one is needed.
STAFF_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/agents/{id}/"): {"name": "Changed by staff"},
    ("PATCH", "/api/v1/integrations/{id}/"): {"status": "disabled"},
    ("PATCH", "/api/v1/conversations/{id}/"): {"metadata": {"by": "staff"}},
    ("POST", "/api/v1/conversations/{conversation_id}/messages/"): {"role": "user", "content": "x"},
}
STAFF_QUERIES = {
    "/api/v1/conversations/": "?agent={agent}",
    "/api/v1/integrations/": "?agent={agent}",
    "/api/v1/conversations/{conversation_id}/export/": "?format=jsonl",
}


def test_every_private_route_says_which_staff_roles_may_call_it() -> None:
    private = {
        (method, template) for template, method in operations() if not is_public(method, template)
    }

    assert private == set(STAFF_MAY)


def state_of(a: dict[str, Any]) -> dict[str, Any]:
    """Everything of A's a staff call could change."""
    agent = A1Agent.objects.filter(pk=a["agent"].pk).values("name", "status", "handle").first()
    app = App.objects.filter(pk=a["agent"].app_id).values("key_hash").first()
    integration = AgentIntegration.objects.filter(pk=a["integration"].pk).values("status").first()
    conversation = (
        AgentConversation.objects.filter(pk=a["conversation"].pk)
        .values("status", "metadata", "ended_at")
        .first()
    )
    return {"agent": agent, "app": app, "integration": integration, "conversation": conversation}


@pytest.mark.parametrize("role", ["support", "admin"])
@pytest.mark.parametrize(("method", "template"), sorted(STAFF_MAY))
def test_a_staff_role_may_call_exactly_the_routes_its_role_allows(
    owner_a: dict[str, Any], role: str, method: str, template: str
) -> None:
    user = User.objects.create_user(f"{role}_member", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = APIClient()
    client.force_login(user)
    path = path_for(template, owner_a) + STAFF_QUERIES.get(template, "").format(
        agent=owner_a["agent"].pk
    )
    before = state_of(owner_a)

    response = getattr(client, method.lower())(
        path, STAFF_BODIES.get((method, template), {}), format="json"
    )

    if role in STAFF_MAY[(method, template)]:
        assert 200 <= response.status_code < 300, response.content[:500]
    else:
        assert response.status_code == 403, response.content[:500]
        assert response.json()["code"] == "permission_denied"
        assert state_of(owner_a) == before
