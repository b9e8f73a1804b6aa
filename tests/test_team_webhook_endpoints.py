"""A team's own webhook endpoints and notification settings, managed by its admins."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from agents.services import agent_create, agent_update
from notifications.models import WebhookDelivery, WebhookEndpoint
from tests.teams_world import TEAM, team_world

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/webhooks/endpoints/"
BODY = {"url": "https://1.1.1.1/team-hooks", "description": "team receiver"}


@pytest.fixture
def world() -> None:
    team_world()


def create(headers: dict[str, str], team: str | None = TEAM) -> Any:
    url = f"{ENDPOINTS}?team={team}" if team else ENDPOINTS
    return APIClient().post(url, BODY, format="json", **headers)


def test_an_admin_registers_the_teams_endpoint_and_another_admin_manages_it(
    world: None, owner_headers: Any
) -> None:
    from tests.teams_world import member_add

    member_add(TEAM, "second_admin", ["a1zap:admin"])

    response = create(owner_headers("admin"))

    assert response.status_code == 201, response.content
    assert response.json()["owner_id"] == TEAM
    endpoint_id = response.json()["id"]
    listed = APIClient().get(ENDPOINTS, **owner_headers("second_admin")).json()["results"]
    assert [row["id"] for row in listed] == [endpoint_id]
    change = APIClient().patch(
        f"{ENDPOINTS}{endpoint_id}/", {"enabled": False}, format="json",
        **owner_headers("second_admin"),
    )  # fmt: skip
    assert change.status_code == 200


@pytest.mark.parametrize(("caller", "status"), [("manager", 403), ("outsider", 404)])
def test_only_the_teams_admins_register_its_endpoints(
    world: None, owner_headers: Any, caller: str, status: int
) -> None:
    response = create(owner_headers(caller))

    assert response.status_code == status
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("caller", ["manager", "viewer", "removed", "outsider"])
def test_a_non_admin_neither_sees_nor_reaches_the_teams_endpoint(
    world: None, owner_headers: Any, caller: str
) -> None:
    endpoint_id = create(owner_headers("admin")).json()["id"]

    listed = APIClient().get(ENDPOINTS, **owner_headers(caller))
    detail = APIClient().get(f"{ENDPOINTS}{endpoint_id}/", **owner_headers(caller))

    assert listed.json()["results"] == []
    assert detail.status_code == 404


def test_the_teams_endpoint_receives_its_agents_events(world: None, owner_headers: Any) -> None:
    endpoint_id = create(owner_headers("admin")).json()["id"]
    own_endpoint = create(owner_headers("admin"), team=None).json()["id"]

    agent, _ = agent_create(
        owner_id=TEAM, team_id=TEAM, name="T", handle="t_hook", agent_type="work"
    )
    agent_update(agent=agent, name="Renamed")

    deliveries = WebhookDelivery.objects.filter(endpoint_id=endpoint_id)
    assert deliveries.count() == 2
    assert not WebhookDelivery.objects.filter(endpoint_id=own_endpoint).exists()


def test_a_teams_notification_settings_are_its_admins(world: None, owner_headers: Any) -> None:
    url = f"/api/v1/notifications/settings/?team={TEAM}"

    changed = APIClient().patch(
        url, {"usage_email_enabled": False}, format="json", **owner_headers("admin")
    )
    refused = APIClient().get(url, **owner_headers("editor"))
    own = APIClient().get("/api/v1/notifications/settings/", **owner_headers("admin"))

    assert changed.status_code == 200, changed.content
    assert changed.json()["usage_email_enabled"] is False
    assert refused.status_code == 403
    assert own.json()["usage_email_enabled"] is True
