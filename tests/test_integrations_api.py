"""The integrations API: validated provider settings, secrets encrypted and never returned."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create
from core.encryption import decrypt
from integrations.models import AgentIntegration
from tests.factories import AgentFactory, IntegrationFactory, staff_user

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]

VALID_CONFIGS: dict[str, dict[str, Any]] = {
    "whatsapp": {
        "phone_number_id": "106540352242922",
        "access_token": "EAAGm0PX4ZCpsBAtokenSECRETwa1234",
        "verify_token": "verify-me-please-5678",
    },
    "slack": {
        "bot_token": "xoxb-1111-2222-slackSECRET9012",
        "signing_secret": "8f742231b10e8888abcd3456",
        "channel_id": "C024BE91L",
    },
    "discord": {
        "bot_token": "MTA5ODc2NTQzMjE.discordSECRET7890",
        "application_id": "1098765432109876543",
    },
    "telegram": {"bot_token": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"},
    "email": {
        "address": "bot@example.com",
        "smtp_host": "smtp.example.com",
        "smtp_port": 587,
        "smtp_username": "bot@example.com",
        "smtp_password": "smtp-password-SECRET-4321",
    },
    "webhook": {
        "url": "https://hooks.example.com/a1zap",
        "signing_secret": "whsec_abcdefSECRET1111",
    },
}
SECRET_KEYS = {
    "whatsapp": {"access_token", "verify_token"},
    "slack": {"bot_token", "signing_secret"},
    "discord": {"bot_token"},
    "telegram": {"bot_token"},
    "email": {"smtp_password"},
    "webhook": {"url", "signing_secret"},
}


@pytest.fixture
def agent() -> A1Agent:
    agent, _ = agent_create(owner_id="user_1", name="Mine", handle="mine_bot", agent_type="work")
    return agent


def create_integration(
    api_client: APIClient, headers: dict[str, str], agent: A1Agent, provider: str, config: Any
) -> Any:
    body = {"agent": str(agent.pk), "provider": provider, "config": config}
    return api_client.post("/api/v1/integrations/", body, format="json", **headers)


def raw_config(integration_id: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT config::text FROM agent_integrations WHERE id = %s", [integration_id]
        )
        (text,) = cursor.fetchone()
    return str(text)


# --- create ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(VALID_CONFIGS))
def test_each_provider_is_created_with_secrets_masked_in_the_answer_and_encrypted_in_the_row(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent, provider: str
) -> None:
    config = VALID_CONFIGS[provider]

    response = create_integration(api_client, owner_headers(), agent, provider, config)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["agent"], body["provider"], body["status"]) == (str(agent.pk), provider, "active")
    assert body["last_sync_at"] is not None
    for name, value in config.items():
        if name in SECRET_KEYS[provider]:
            assert body["config"][name] == "••••" + value[-4:]
        else:
            assert body["config"][name] == value
    row = raw_config(body["id"])
    stored = json.loads(row)
    assert set(stored["secrets"]) == SECRET_KEYS[provider]
    for name in SECRET_KEYS[provider]:
        assert config[name] not in row
        assert config[name] not in response.content.decode()
        assert decrypt(stored["secrets"][name]) == config[name]
    assert stored["public"] == {k: v for k, v in config.items() if k not in SECRET_KEYS[provider]}


def test_short_secrets_are_masked_without_a_hint(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    config = {**VALID_CONFIGS["whatsapp"], "verify_token": "abc123"}

    response = create_integration(api_client, owner_headers(), agent, "whatsapp", config)

    assert response.json()["config"]["verify_token"] == "••••"


def test_optional_keys_may_be_left_out(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    response = create_integration(
        api_client, owner_headers(), agent, "webhook", {"url": "https://example.com/hook"}
    )

    assert response.status_code == 201, response.json()
    assert response.json()["config"] == {"url": "••••hook"}


INVALID_CONFIGS = [
    ("whatsapp", "phone_number_id", None, "missing"),
    ("whatsapp", "phone_number_id", 106540352242922, "wrong type"),
    ("whatsapp", "access_token", None, "missing"),
    ("whatsapp", "verify_token", 1234, "wrong type"),
    ("slack", "bot_token", "xoxp-user-token-not-a-bot", "not a bot token"),
    ("slack", "signing_secret", None, "missing"),
    ("slack", "channel_id", ["C1"], "wrong type"),
    ("discord", "bot_token", None, "missing"),
    ("discord", "application_id", "app-one", "not numeric"),
    ("discord", "guild_id", 42, "wrong type"),
    ("telegram", "bot_token", "not-a-telegram-token", "malformed"),
    ("telegram", "bot_token", None, "missing"),
    ("email", "address", "not-an-email", "malformed"),
    ("email", "smtp_host", "smtp host!", "malformed"),
    ("email", "smtp_port", "587", "wrong type"),
    ("email", "smtp_port", 70000, "out of range"),
    ("email", "smtp_port", True, "wrong type"),
    ("email", "smtp_username", None, "missing"),
    ("email", "smtp_password", "", "blank"),
    ("webhook", "url", "http://insecure.example.com/hook", "not https"),
    ("webhook", "url", "https://user:pass@example.com/hook", "credentials"),
    ("webhook", "url", None, "missing"),
    ("webhook", "signing_secret", {"nested": True}, "wrong type"),
    ("webhook", "extra_key", "x", "unknown key"),
]


@pytest.mark.parametrize(("provider", "key", "value", "why"), INVALID_CONFIGS)
def test_each_providers_settings_are_validated_400_naming_the_key(
    api_client: APIClient,
    owner_headers: Headers,
    agent: A1Agent,
    provider: str,
    key: str,
    value: Any,
    why: str,
) -> None:
    config = dict(VALID_CONFIGS[provider])
    if value is None and why == "missing":
        config.pop(key)
    else:
        config[key] = value

    response = create_integration(api_client, owner_headers(), agent, provider, config)

    assert response.status_code == 400, (why, response.json())
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["errors"]["config"]) == [key]
    assert key in body["detail"]
    assert not AgentIntegration.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("provider", "myspace"), ("provider", None), ("config", ["a"]), ("config", None),
     ("agent", "nope"), ("status", "active"), ("secrets", {})],
)  # fmt: skip
def test_bad_fields_answer_400_naming_the_field(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent, field: str, value: Any
) -> None:
    body = {"agent": str(agent.pk), "provider": "telegram", "config": VALID_CONFIGS["telegram"]}
    body[field] = value

    response = api_client.post("/api/v1/integrations/", body, format="json", **owner_headers())

    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]


def test_a_second_integration_of_the_same_provider_is_refused_on_provider(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    create_integration(api_client, owner_headers(), agent, "slack", VALID_CONFIGS["slack"])

    again = create_integration(api_client, owner_headers(), agent, "slack", VALID_CONFIGS["slack"])

    assert again.status_code == 400
    assert again.json()["code"] == "validation_error"
    assert "provider" in again.json()["errors"]
    assert AgentIntegration.objects.count() == 1


def test_creating_for_another_owners_agent_is_404(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    response = create_integration(
        api_client, owner_headers("user_2"), agent, "telegram", VALID_CONFIGS["telegram"]
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not AgentIntegration.objects.exists()


def test_the_database_checks_provider_and_status() -> None:
    integration = IntegrationFactory.create(provider="slack")

    for statement in (
        "UPDATE agent_integrations SET provider = 'myspace' WHERE id = %s",
        "UPDATE agent_integrations SET status = 'broken' WHERE id = %s",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [integration.pk])


# --- read ------------------------------------------------------------------------------------


def test_owner_lists_an_agents_integrations_with_secrets_masked(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    for provider in ("slack", "telegram"):
        create_integration(api_client, owner_headers(), agent, provider, VALID_CONFIGS[provider])
    IntegrationFactory.create()  # another owner's

    response = api_client.get("/api/v1/integrations/", {"agent": agent.pk}, **owner_headers())

    assert response.status_code == 200
    results = response.json()["results"]
    assert sorted(row["provider"] for row in results) == ["slack", "telegram"]
    text = response.content.decode()
    for provider in ("slack", "telegram"):
        for name in SECRET_KEYS[provider]:
            assert VALID_CONFIGS[provider][name] not in text


def test_the_list_needs_an_agent_of_ones_own(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    missing = api_client.get("/api/v1/integrations/", **owner_headers())
    foreign = api_client.get("/api/v1/integrations/", {"agent": agent.pk}, **owner_headers("x"))

    assert missing.status_code == 400
    assert "agent" in missing.json()["errors"]
    assert foreign.status_code == 404


def test_list_runs_a_constant_number_of_queries(
    api_client: APIClient, owner_headers: Headers, django_assert_max_num_queries: Any
) -> None:
    headers = owner_headers("busy")
    agents = [AgentFactory.create(owner_id="busy") for _ in range(2)]
    for agent in agents:
        for provider, config in VALID_CONFIGS.items():
            create_integration(api_client, headers, agent, provider, config)

    with django_assert_max_num_queries(3):
        response = api_client.get("/api/v1/integrations/", {"agent": agents[0].pk}, **headers)
    assert len(response.json()["results"]) == len(VALID_CONFIGS)


# --- update and delete -----------------------------------------------------------------------


def test_a_partial_update_keeps_the_secrets_not_sent(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "whatsapp", VALID_CONFIGS["whatsapp"]
    ).json()
    url = f"/api/v1/integrations/{created['id']}/"

    response = api_client.patch(
        url, {"config": {"phone_number_id": "999000111"}}, format="json", **owner_headers()
    )

    assert response.status_code == 200, response.json()
    assert response.json()["config"] == {**created["config"], "phone_number_id": "999000111"}
    stored = json.loads(raw_config(created["id"]))
    assert decrypt(stored["secrets"]["access_token"]) == VALID_CONFIGS["whatsapp"]["access_token"]
    assert decrypt(stored["secrets"]["verify_token"]) == VALID_CONFIGS["whatsapp"]["verify_token"]
    assert response.json()["last_sync_at"] > created["last_sync_at"]


def test_a_new_secret_replaces_the_old_one(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "telegram", VALID_CONFIGS["telegram"]
    ).json()
    new_token = "987654321:ZZHdqTcvCH1vGWJxfSeofSAs0K5PALDnew"

    response = api_client.patch(
        f"/api/v1/integrations/{created['id']}/",
        {"config": {"bot_token": new_token}},
        format="json",
        **owner_headers(),
    )

    assert response.json()["config"] == {"bot_token": "••••" + new_token[-4:]}
    stored = json.loads(raw_config(created["id"]))
    assert decrypt(stored["secrets"]["bot_token"]) == new_token


def test_null_removes_an_optional_key_but_not_a_required_one(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "webhook", VALID_CONFIGS["webhook"]
    ).json()
    url = f"/api/v1/integrations/{created['id']}/"

    removed = api_client.patch(
        url, {"config": {"signing_secret": None}}, format="json", **owner_headers()
    )
    required = api_client.patch(url, {"config": {"url": None}}, format="json", **owner_headers())

    assert removed.status_code == 200
    assert removed.json()["config"] == {"url": "••••" + VALID_CONFIGS["webhook"]["url"][-4:]}
    assert set(json.loads(raw_config(created["id"]))["secrets"]) == {"url"}
    assert required.status_code == 400
    assert "url" in required.json()["errors"]["config"]


def test_status_may_be_disabled_and_reactivated_but_not_set_to_error(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "telegram", VALID_CONFIGS["telegram"]
    ).json()
    url = f"/api/v1/integrations/{created['id']}/"

    disabled = api_client.patch(url, {"status": "disabled"}, format="json", **owner_headers())
    error = api_client.patch(url, {"status": "error"}, format="json", **owner_headers())
    active = api_client.patch(url, {"status": "active"}, format="json", **owner_headers())

    assert disabled.json()["status"] == "disabled"
    assert disabled.json()["last_sync_at"] == created["last_sync_at"]
    assert error.status_code == 400
    assert active.json()["status"] == "active"


@pytest.mark.parametrize(
    "body", [{"provider": "slack"}, {"agent": "x"}, {"config": "text"}, {"config": {"bogus": 1}}]
)
def test_patch_refuses_other_fields_and_bad_settings(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent, body: dict[str, Any]
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "telegram", VALID_CONFIGS["telegram"]
    ).json()

    response = api_client.patch(
        f"/api/v1/integrations/{created['id']}/", body, format="json", **owner_headers()
    )

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_owner_deletes_an_integration_204(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "telegram", VALID_CONFIGS["telegram"]
    ).json()

    response = api_client.delete(f"/api/v1/integrations/{created['id']}/", **owner_headers())

    assert response.status_code == 204
    assert not AgentIntegration.objects.exists()


# --- who may do what -------------------------------------------------------------------------

ONE_INTEGRATION_ROUTES = [
    ("get", {}),
    ("patch", {"status": "disabled"}),
    ("delete", {}),
]


@pytest.mark.parametrize(("method", "body"), ONE_INTEGRATION_ROUTES)
def test_another_owner_gets_404_on_every_route(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent, method: str, body: Any
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "telegram", VALID_CONFIGS["telegram"]
    ).json()

    response = getattr(api_client, method)(
        f"/api/v1/integrations/{created['id']}/", body, format="json", **owner_headers("user_2")
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert AgentIntegration.objects.get().status == "active"


@pytest.mark.parametrize(("method", "body"), [*ONE_INTEGRATION_ROUTES, ("list", {}), ("post", {})])
def test_no_authentication_is_401_and_an_app_key_is_403(
    api_client: APIClient, owner_headers: Headers, method: str, body: Any
) -> None:
    agent, key = agent_create(owner_id="user_1", name="A", handle="app_bot", agent_type="work")
    created = create_integration(
        api_client, owner_headers(), agent, "telegram", VALID_CONFIGS["telegram"]
    ).json()
    if method == "list":
        method, url = "get", f"/api/v1/integrations/?agent={agent.pk}"
    elif method == "post":
        url = "/api/v1/integrations/"
        body = {"agent": str(agent.pk), "provider": "slack", "config": VALID_CONFIGS["slack"]}
    else:
        url = f"/api/v1/integrations/{created['id']}/"

    anonymous = getattr(api_client, method)(url, body, format="json")
    as_app = getattr(api_client, method)(
        url, body, format="json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert as_app.status_code == 403
    assert AgentIntegration.objects.count() == 1


def test_staff_read_any_integration_masked_but_change_nothing(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "slack", VALID_CONFIGS["slack"]
    ).json()
    staff = APIClient()
    staff.force_login(staff_user())
    url = f"/api/v1/integrations/{created['id']}/"

    listed = staff.get("/api/v1/integrations/", {"agent": agent.pk})
    read = staff.get(url)
    patched = staff.patch(url, {"status": "disabled"}, format="json")
    deleted = staff.delete(url)

    assert (listed.status_code, read.status_code) == (200, 200)
    assert read.json()["config"]["bot_token"].startswith("••••")
    assert (patched.status_code, deleted.status_code) == (403, 403)
    assert AgentIntegration.objects.get().status == "active"


def test_the_admin_shows_settings_masked_and_offers_no_raw_json_or_add(
    api_client: APIClient, owner_headers: Headers, agent: A1Agent
) -> None:
    created = create_integration(
        api_client, owner_headers(), agent, "slack", VALID_CONFIGS["slack"]
    ).json()
    admin = APIClient()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))

    page = admin.get(f"/admin/integrations/agentintegration/{created['id']}/change/")
    add = admin.get("/admin/integrations/agentintegration/add/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "C024BE91L" in html
    assert "••••" + VALID_CONFIGS["slack"]["bot_token"][-4:] in html
    for name in SECRET_KEYS["slack"]:
        assert VALID_CONFIGS["slack"][name] not in html
    assert 'name="config"' not in html
    assert add.status_code == 403
