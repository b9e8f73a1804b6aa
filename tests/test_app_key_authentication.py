"""Apps authenticate by key: one indexed lookup per request, never cached, so a rotation or
a suspension takes effect on every host at once."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents.models import A1Agent, App
from agents.services import agent_create, agent_rotate_key
from audit.actors import Actor

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage/events/"


def report(client: APIClient, key: str, event_id: str = "e1") -> Any:
    return client.post(URL, {"id": event_id}, format="json", HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture
def agent_and_key() -> tuple[A1Agent, str]:
    return agent_create(owner_id="user_1", name="Bot", handle="key_bot", agent_type="work")


def test_a_key_is_checked_by_one_query_that_builds_no_model(
    api_client: APIClient, agent_and_key: tuple[A1Agent, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = agent_and_key
    built: list[Any] = []
    original = App.__init__

    def init(self: App, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(App, "__init__", init)

    with CaptureQueriesContext(connection) as queries:
        response = report(api_client, key)

    assert response.status_code == 202
    assert len([q for q in queries if "apps" in q["sql"] and "key_hash" in q["sql"]]) == 1
    assert built == []


def test_a_rotated_key_is_refused_on_the_next_request(
    api_client: APIClient, agent_and_key: tuple[A1Agent, str]
) -> None:
    agent, old_key = agent_and_key
    assert report(api_client, old_key, "before").status_code == 202

    _, new_key = agent_rotate_key(agent=agent, actor=Actor.owner("user_1"))

    refused = report(api_client, old_key, "after")
    assert (refused.status_code, refused.json()["code"]) == (401, "not_authenticated")
    assert report(api_client, new_key, "after").status_code == 202


def test_a_suspended_app_is_refused(
    api_client: APIClient, agent_and_key: tuple[A1Agent, str]
) -> None:
    agent, key = agent_and_key
    assert report(api_client, key, "before").status_code == 202
    App.objects.filter(pk=agent.app_id).update(status="suspended")

    response = report(api_client, key, "after")

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    assert "suspended" in response.json()["detail"]


def test_an_unknown_key_is_refused(api_client: APIClient) -> None:
    response = report(api_client, "a1app_" + "x" * 43)

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
