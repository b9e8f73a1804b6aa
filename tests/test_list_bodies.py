"""The hot lists answer, byte for byte, what their DRF serializers and renderer would write.

The agents list and a conversation's messages are written from `.values()` rows by one
function per resource instead of a ModelSerializer walking its fields; every page of them
must be the body the serializer gives for the same rows, through every kind of value.
"""

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Model, QuerySet
from django_filters.rest_framework import FilterSet
from rest_framework.renderers import JSONRenderer
from rest_framework.serializers import BaseSerializer, ModelSerializer
from rest_framework.test import APIClient

from agents.api.serializers import AgentSerializer
from agents.models import A1Agent
from conversations.api.serializers import MessageSerializer
from conversations.models import Message
from tests.factories import AgentFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]
AWKWARD_TEXT = 'quote " backslash \\ tab \t newline \n nul-free \u2028 é ☃ 😀 </script>'


def pages(client: APIClient, url: str, headers: dict[str, str]) -> list[Any]:
    """Every page of a list, following its `next` links."""
    answers = []
    while url:
        response = client.get(url, **headers)
        assert response.status_code == 200, response.content
        answers.append(response)
        url = response.json()["next"]
    return answers


def assert_pages_are_the_serializers(
    answers: list[Any], rows: QuerySet[Any], serializer: type[BaseSerializer[Any]]
) -> None:
    expected = list(rows)
    position = 0
    for response in answers:
        body = response.json()
        page = expected[position : position + len(body["results"])]
        position += len(page)
        written = OrderedDict(
            [
                ("next", body["next"]),
                ("previous", body["previous"]),
                ("results", serializer(page, many=True).data),
            ]
        )
        assert response.content == JSONRenderer().render(written)
    assert position == len(expected)


def test_every_page_of_the_agents_list_is_what_the_serializer_writes(
    api_client: APIClient, owner_headers: Headers
) -> None:
    moment = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    AgentFactory.create(owner_id="user_1", handle="bare")
    AgentFactory.create(
        owner_id="user_1", handle="full", name=AWKWARD_TEXT, description=AWKWARD_TEXT,
        avatar_url="https://example.com/a.png", email="ada@example.com",
        phone_number="+44 20 7946 0958", whatsapp_number="+1 (555) 010-9999",
        base_website="https://example.com", custom_website="https://ada.example.com",
        onboarding_data={"steps": [1, 2.5, None, True], "nested": {"é": AWKWARD_TEXT}},
        settings={"tone": "brief", "limits": {"max": 10**12}}, status="paused",
        agent_type="work",
    )  # fmt: skip
    for n in range(3):
        AgentFactory.create(owner_id="user_1", handle=f"more_{n}", onboarding_data=[n, "x"])
    AgentFactory.create(owner_id="user_2", handle="not_mine")
    A1Agent.objects.filter(handle="bare").update(created_at=moment, updated_at=moment)

    answers = pages(api_client, "/api/v1/agents/?page_size=2", owner_headers("user_1"))

    rows = A1Agent.objects.filter(owner_id="user_1").select_related("app")
    assert_pages_are_the_serializers(answers, rows.order_by("-created_at", "-id"), AgentSerializer)
    assert len(answers) == 3


def test_every_page_of_a_conversations_messages_is_what_the_serializer_writes(
    api_client: APIClient, owner_headers: Headers
) -> None:
    conversation = ConversationFactory.create(agent=AgentFactory.create(owner_id="user_1"))
    moment = dt.datetime(2026, 3, 1, 12, 30, 15, tzinfo=dt.UTC)
    MessageFactory.create(conversation=conversation, content="first", created_at=moment)
    MessageFactory.create(
        conversation=conversation, role="agent", content=AWKWARD_TEXT,
        metadata={"tool": {"args": [1, 2.5, None, False]}, "é": AWKWARD_TEXT},
        client_message_id="client-1",
    )  # fmt: skip
    MessageFactory.create(conversation=conversation, agent=None, role="system", content="")
    for n in range(4):
        MessageFactory.create(conversation=conversation, role="tool", content=f"m{n}")

    answers = pages(
        api_client,
        f"/api/v1/conversations/{conversation.id}/messages/?page_size=3",
        owner_headers("user_1"),
    )

    rows = Message.objects.filter(conversation=conversation).order_by("created_at", "id")
    assert_pages_are_the_serializers(answers, rows, MessageSerializer)
    assert len(answers) == 3


def test_the_hot_lists_build_no_serializer_fields(
    api_client: APIClient, owner_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = ConversationFactory.create(agent=AgentFactory.create(owner_id="user_1"))
    MessageFactory.create(conversation=conversation)
    built: list[Any] = []
    original = ModelSerializer.get_fields

    def get_fields(self: ModelSerializer[Any]) -> Any:
        built.append(self)
        return original(self)

    monkeypatch.setattr(ModelSerializer, "get_fields", get_fields)

    agents = api_client.get("/api/v1/agents/", **owner_headers("user_1"))
    messages = api_client.get(
        f"/api/v1/conversations/{conversation.id}/messages/", **owner_headers("user_1")
    )

    assert (agents.status_code, messages.status_code) == (200, 200)
    assert built == []


def test_a_list_builds_its_filter_form_only_when_a_filter_is_asked(
    api_client: APIClient, owner_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    AgentFactory.create(owner_id="user_1", handle="active_one")
    AgentFactory.create(owner_id="user_1", handle="paused_one", status="paused")
    built: list[Any] = []
    original = FilterSet.__init__

    def init(self: FilterSet, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(FilterSet, "__init__", init)

    plain = api_client.get("/api/v1/agents/?page_size=10", **owner_headers("user_1"))
    plain_forms = len(built)
    paused = api_client.get("/api/v1/agents/?status=paused", **owner_headers("user_1"))

    assert [a["handle"] for a in plain.json()["results"]] == ["paused_one", "active_one"]
    assert [a["handle"] for a in paused.json()["results"]] == ["paused_one"]
    assert (plain_forms, len(built)) == (0, 1)


def test_the_hot_lists_build_no_model_instances(
    api_client: APIClient, owner_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = ConversationFactory.create(agent=AgentFactory.create(owner_id="user_1"))
    MessageFactory.create(conversation=conversation)
    messages_url = f"/api/v1/conversations/{conversation.id}/messages/"
    # The first request reads the owner's plan rates (a model); the process keeps them.
    api_client.get(messages_url, **owner_headers("user_1"))
    built: list[Any] = []
    original = Model.__init__

    def init(self: Model, *args: Any, **kwargs: Any) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Model, "__init__", init)

    agents = api_client.get("/api/v1/agents/", **owner_headers("user_1"))
    messages = api_client.get(messages_url, **owner_headers("user_1"))

    assert (agents.status_code, messages.status_code) == (200, 200)
    assert built == []
