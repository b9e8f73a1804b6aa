"""Hostile JSON never reaches a 500: deep nesting in every bounded JSON field, and text that
cannot be encoded (a lone surrogate such as "\\ud800") anywhere, dict keys included.

Bodies are written as JSON text by hand: a test client's encoder could not even encode a
lone surrogate, and a nested Python value that deep could not be serialised.
"""

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from rest_framework import serializers

from agents.models import A1Agent
from agents.services import agent_create
from conversations.models import AgentConversation, Message
from core.api_input import BoundedJSONField, json_problem, text_problem
from integrations.models import AgentIntegration
from integrations.providers import ConfigInvalid, config_build
from tests.factories import ConversationFactory, IntegrationFactory
from usage.event_input import parse_event
from usage.models import AgentUsage

pytestmark = pytest.mark.django_db

HOLE = '"__HOLE__"'
LONE = '"\\ud800"'


def nested_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.fixture
def agent_and_key() -> tuple[A1Agent, str]:
    return agent_create(owner_id="user_1", name="Bot", handle="hostile_bot", agent_type="work")


def send(method: str, path: str, body: str, headers: dict[str, str]) -> Any:
    client = Client()
    call = client.post if method == "post" else client.patch
    return call(path, body, content_type="application/json", **headers)


def targets(
    agent: A1Agent, key: str, owner: dict[str, str]
) -> dict[str, tuple[str, str, str, dict[str, str]]]:
    """Every place a bounded JSON document is taken: method, path, body with a hole, headers."""
    app = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    conversation = ConversationFactory.create(agent=agent)
    integration = IntegrationFactory.create(agent=agent)
    return {
        "agent onboarding_data": (
            "post", "/api/v1/agents/",
            f'{{"name": "N", "handle": "deep_bot", "agent_type": "work", '
            f'"onboarding_data": {HOLE}}}',
            owner,
        ),
        "agent settings": (
            "post", "/api/v1/agents/",
            f'{{"name": "N", "handle": "deep_bot", "agent_type": "work", "settings": {HOLE}}}',
            owner,
        ),
        "agent settings (update)": (
            "patch", f"/api/v1/agents/{agent.pk}/", f'{{"settings": {HOLE}}}', owner,
        ),
        "conversation metadata": (
            "post", "/api/v1/conversations/", f'{{"channel": "web", "metadata": {HOLE}}}', app,
        ),
        "conversation metadata (update)": (
            "patch", f"/api/v1/conversations/{conversation.pk}/", f'{{"metadata": {HOLE}}}', app,
        ),
        "message metadata": (
            "post", f"/api/v1/conversations/{conversation.pk}/messages/",
            f'{{"role": "user", "content": "hi", "metadata": {HOLE}}}', app,
        ),
        "integration config": (
            "post", "/api/v1/integrations/",
            f'{{"agent": "{agent.pk}", "provider": "telegram", "config": {HOLE}}}', owner,
        ),
        "integration config (update)": (
            "patch", f"/api/v1/integrations/{integration.pk}/", f'{{"config": {HOLE}}}', owner,
        ),
        "usage event": ("post", "/api/v1/usage/events/", f'{{"id": {HOLE}, "messages": 1}}', app),
        "usage batch": (
            "post", "/api/v1/usage/events/", f'{{"events": [{{"id": "e1", "messages": {HOLE}}}]}}',
            app,
        ),
    }  # fmt: skip


def nothing_written(agent: A1Agent) -> None:
    assert A1Agent.objects.count() == 1
    assert A1Agent.objects.get().settings == agent.settings
    assert AgentConversation.objects.count() == 1
    assert not Message.objects.exists()
    assert AgentIntegration.objects.count() == 1
    assert not AgentUsage.objects.exists()


@pytest.mark.parametrize("levels", [600, 700, 800, 10_000])
def test_json_nested_hundreds_or_thousands_deep_in_any_bounded_field_is_400(
    agent_and_key: tuple[A1Agent, str], owner_headers: Any, levels: int
) -> None:
    agent, key = agent_and_key
    for name, (method, path, body, headers) in targets(agent, key, owner_headers()).items():
        response = send(method, path, body.replace(HOLE, nested_object(levels)), headers)

        assert response.status_code == 400, (name, response.content[:300])
        # Parsed, the field refuses it; past what Python's parser can nest, the parser does.
        assert response.json()["code"] in ("validation_error", "malformed_request"), name
    nothing_written(agent)


@pytest.mark.parametrize(
    "hole",
    [
        LONE,
        f"[{LONE}]",
        f'{{"key": {LONE}}}',
        '{"\\udfff": 1}',
        '{"a": {"b\\ud800c": "d"}}',
    ],
)
def test_a_lone_surrogate_anywhere_in_a_bounded_field_or_event_is_400(
    agent_and_key: tuple[A1Agent, str], owner_headers: Any, hole: str
) -> None:
    agent, key = agent_and_key
    for name, (method, path, body, headers) in targets(agent, key, owner_headers()).items():
        response = send(method, path, body.replace(HOLE, hole), headers)

        assert response.status_code == 400, (name, response.content[:300])
        assert response.json()["code"] == "malformed_request", name
    nothing_written(agent)


def test_a_lone_surrogate_in_plain_text_fields_and_keys_is_400(
    agent_and_key: tuple[A1Agent, str], owner_headers: Any
) -> None:
    agent, key = agent_and_key
    app = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    conversation = ConversationFactory.create(agent=agent)
    cases = [
        ("/api/v1/agents/", '{"name": "a\\ud800", "handle": "sur_bot", "agent_type": "work"}',
         owner_headers()),
        ("/api/v1/agents/", '{"name": "a", "handle": "sur_bot", "agent_type": "work", '
         '"settings": {"theme\\udbff": "dark"}}', owner_headers()),
        ("/api/v1/usage/events/", '{"id": "evt-\\ud800", "messages": 1}', app),
        ("/api/v1/usage/events/", '{"events": [{"id": "\\udc00"}]}', app),
        (f"/api/v1/conversations/{conversation.pk}/messages/",
         '{"role": "user", "content": "hi \\ud83d"}', app),
        ("/api/v1/integrations/",
         f'{{"agent": "{agent.pk}", "provider": "webhook", "config": '
         '{"url": "https://1.1.1.1/\\ud800"}}', owner_headers()),
        ("/api/v1/integrations/",
         f'{{"agent": "{agent.pk}", "provider": "telegram", "config": {{"\\ud800": 1}}}}',
         owner_headers()),
    ]  # fmt: skip
    for path, body, headers in cases:
        response = send("post", path, body, headers)

        assert response.status_code == 400, (path, body, response.content[:300])
        assert response.json()["code"] == "malformed_request"
    assert A1Agent.objects.count() == 1
    assert not AgentUsage.objects.exists()
    assert not Message.objects.exists()
    assert not AgentIntegration.objects.exists()


def test_escaped_surrogate_pairs_are_ordinary_text(
    agent_and_key: tuple[A1Agent, str], owner_headers: Any
) -> None:
    body = '{"name": "Bot \\ud83d\\ude80", "handle": "rocket_bot", "agent_type": "personal"}'

    response = send("post", "/api/v1/agents/", body, owner_headers())

    assert response.status_code == 201, response.content
    assert A1Agent.objects.get(handle="rocket_bot").name == "Bot \U0001f680"


# --- the shared checks, whatever the way in ----------------------------------------------------


def test_the_shared_text_rule_refuses_nul_and_lone_surrogates() -> None:
    assert text_problem("plain") is None
    assert text_problem("café \U0001f680") is None
    assert text_problem("a\x00b") is not None
    assert text_problem("a\ud800b") is not None
    assert json_problem({"ok": ["\udfff"]}) is not None
    assert json_problem({"\ud800": 1}) is not None


def test_a_bounded_json_field_refuses_deep_or_unencodable_values_without_recursing() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = {"a": deep}
    field = BoundedJSONField(require_object=True)

    for value in (deep, {"k\ud800": 1}, {"k": ["\udc00"]}):
        with pytest.raises(serializers.ValidationError):
            field.run_validation(value)
    assert field.run_validation(json.loads(nested_object(19))) == json.loads(nested_object(19))
    with pytest.raises(serializers.ValidationError, match="deeper than 20"):
        field.run_validation(json.loads(nested_object(20)))


def test_the_usage_fast_path_applies_the_shared_text_rule() -> None:
    now = dt.datetime.now(dt.UTC)

    for event_id in ("evt\ud800", "evt\x00"):
        event, errors = parse_event({"id": event_id, "messages": 1}, now)

        assert event is None
        assert errors["id"] == [text_problem(event_id)]


def test_integration_configs_apply_the_shared_text_rule() -> None:
    with pytest.raises(ConfigInvalid) as invalid:
        config_build(provider="telegram", changes={"bot_token": "123456:" + "A" * 30 + "\ud800"})

    assert invalid.value.errors["bot_token"] == [text_problem("\ud800")]
