"""Outbound targets: webhook URLs and SMTP hosts may not reach our own network, and a webhook
URL (a bearer credential) is a secret, masked in responses, the admin and the audit trail.

No test needs the internet: targets are IP literals, `localhost`, or names under `.invalid`
(which never resolve).
"""

import json
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create
from audit.models import AuditEntry
from core import outbound
from core.encryption import decrypt, encrypt
from integrations.models import AgentIntegration
from integrations.services import integration_create
from tests.factories import IntegrationFactory

pytestmark = pytest.mark.django_db

HOOK = "https://1.1.1.1/services/T000/B000/XXXXsecretXXXXtokenABCD"

REFUSED_HOSTS = [
    "127.0.0.1", "127.1.2.3", "localhost", "10.0.0.1", "172.16.0.1", "192.168.1.1",
    "169.254.169.254", "169.254.1.1", "0.0.0.0",  # noqa: S104
    "100.64.0.1", "224.0.0.1", "240.0.0.1",
    "255.255.255.255", "192.0.2.1",
    "[::1]", "[::]", "[fe80::1]", "[fc00::1]", "[fd12:3456::1]", "[fec0::1]", "[ff02::1]",
    "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::1]",
    "metadata.google.internal", "metadata", "instance-data",
]  # fmt: skip


@pytest.fixture
def agent() -> A1Agent:
    agent, _ = agent_create(owner_id="user_1", name="Out", handle="out_bot", agent_type="work")
    return agent


def create(api_client: APIClient, headers: dict[str, str], agent: A1Agent, provider: str,
           config: dict[str, Any]) -> Any:  # fmt: skip
    body = {"agent": str(agent.pk), "provider": provider, "config": config}
    return api_client.post("/api/v1/integrations/", body, format="json", **headers)


def email_config(host: str) -> dict[str, Any]:
    return {
        "address": "bot@example.com", "smtp_host": host, "smtp_port": 587,
        "smtp_username": "bot", "smtp_password": "smtp-password-1234",
    }  # fmt: skip


# --- the guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_the_guard_refuses_internal_and_metadata_targets(host: str) -> None:
    with pytest.raises(outbound.OutboundRefused) as refused:
        outbound.vet_url(f"https://{host}/hook")

    assert not isinstance(refused.value, outbound.OutboundUnresolved)


def test_the_guard_returns_the_vetted_address_to_connect_to() -> None:
    target = outbound.vet_url("https://1.1.1.1:8443/hook")
    v6 = outbound.vet_host("[2606:4700:4700::1111]", 25)

    assert (target.scheme, target.host, target.port, target.address) == (
        "https", "1.1.1.1", 8443, "1.1.1.1",
    )  # fmt: skip
    assert target.addresses == ("1.1.1.1",)
    assert v6.address == "2606:4700:4700::1111"


def test_the_guard_wants_https_and_says_when_a_name_does_not_resolve() -> None:
    with pytest.raises(outbound.OutboundRefused, match="https"):
        outbound.vet_url("http://1.1.1.1/hook")
    with pytest.raises(outbound.OutboundRefused, match="https"):
        outbound.vet_url("ftp://1.1.1.1/hook")
    with pytest.raises(outbound.OutboundUnresolved):
        outbound.vet_url("https://no-such-host.invalid/hook")


def test_insecure_targets_allow_http_loopback_only(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_INSECURE_TARGETS = True

    target = outbound.vet_url("http://127.0.0.1:8080/hook")
    local = outbound.vet_url("http://localhost:8080/hook")

    assert (target.address, target.port, target.scheme) == ("127.0.0.1", 8080, "http")
    assert local.address in ("127.0.0.1", "::1")
    for host in ("10.0.0.1", "169.254.169.254", "[fe80::1]", "metadata.google.internal"):
        with pytest.raises(outbound.OutboundRefused):
            outbound.vet_url(f"http://{host}/hook")


# --- integrations go through it --------------------------------------------------------------


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_a_webhook_url_to_an_internal_target_is_refused_400(
    api_client: APIClient, owner_headers: Any, agent: A1Agent, host: str
) -> None:
    response = create(api_client, owner_headers(), agent, "webhook", {"url": f"https://{host}/h"})

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert "url" in response.json()["errors"]["config"]
    assert not AgentIntegration.objects.exists()


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "10.1.2.3", "169.254.169.254", "metadata.google.internal"]
)
def test_an_smtp_host_on_an_internal_network_is_refused_400(
    api_client: APIClient, owner_headers: Any, agent: A1Agent, host: str
) -> None:
    response = create(api_client, owner_headers(), agent, "email", email_config(host))

    assert response.status_code == 400, response.content
    assert "smtp_host" in response.json()["errors"]["config"]
    assert not AgentIntegration.objects.exists()


def test_an_update_cannot_point_a_webhook_inside_either(
    api_client: APIClient, owner_headers: Any, agent: A1Agent
) -> None:
    created = create(api_client, owner_headers(), agent, "webhook", {"url": HOOK}).json()

    response = api_client.patch(
        f"/api/v1/integrations/{created['id']}/",
        {"config": {"url": "https://169.254.169.254/latest/meta-data/"}},
        format="json",
        **owner_headers(),
    )

    assert response.status_code == 400
    stored = AgentIntegration.objects.get(pk=created["id"]).config
    assert decrypt(stored["secrets"]["url"]) == HOOK


def test_public_targets_and_names_not_resolvable_yet_are_accepted(
    api_client: APIClient, owner_headers: Any, agent: A1Agent
) -> None:
    webhook = create(api_client, owner_headers(), agent, "webhook", {"url": HOOK})
    mail = create(api_client, owner_headers(), agent, "email", email_config("smtp.mail.invalid"))

    assert webhook.status_code == 201, webhook.content
    assert mail.status_code == 201, mail.content


def test_local_development_may_deliver_to_a_loopback_http_receiver(
    api_client: APIClient, owner_headers: Any, agent: A1Agent, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_INSECURE_TARGETS = True

    response = create(
        api_client, owner_headers(), agent, "webhook", {"url": "http://127.0.0.1:8080/hook"}
    )

    assert response.status_code == 201, response.content


# --- the webhook URL is a secret -------------------------------------------------------------


def test_a_webhook_url_is_masked_in_responses_the_admin_and_the_audit_trail(
    api_client: APIClient, owner_headers: Any, agent: A1Agent
) -> None:
    created = create(api_client, owner_headers(), agent, "webhook", {"url": HOOK})
    listed = api_client.get("/api/v1/integrations/", **owner_headers())
    replaced = api_client.patch(
        f"/api/v1/integrations/{created.json()['id']}/",
        {"config": {"url": HOOK + "NEW1"}},
        format="json",
        **owner_headers(),
    )
    staff = User.objects.create_user("support", password="pw", is_staff=True)
    staff.groups.add(Group.objects.get(name="support"))
    admin = Client()
    admin.force_login(staff)
    page = admin.get(f"/admin/integrations/agentintegration/{created.json()['id']}/change/")

    assert created.json()["config"] == {"url": "••••ABCD"}
    assert replaced.json()["config"] == {"url": "••••NEW1"}
    assert page.status_code == 200
    assert "••••NEW1" in page.content.decode()
    for response in (created, listed, replaced, page):
        assert "XXXXsecretXXXXtoken" not in response.content.decode()
    trail = AuditEntry.objects.filter(target_type="integration").order_by("id")
    assert [entry.changes["config.url"] for entry in trail] == [
        {"before": None, "after": "[redacted]"},
        {"before": "[redacted]", "after": "[redacted]"},
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT string_agg(audit_log::text, ' ') FROM audit_log")
        assert "XXXXsecretXXXXtoken" not in cursor.fetchone()[0]
        cursor.execute("SELECT config::text FROM agent_integrations")
        assert "XXXXsecretXXXXtoken" not in cursor.fetchone()[0]


def _migration() -> Any:
    return __import__(
        "integrations.migrations.0004_webhook_url_secret", fromlist=["url_to_secrets"]
    )


def test_the_data_migration_moves_stored_urls_into_the_encrypted_secrets(agent: A1Agent) -> None:
    signing = encrypt("whsec_signing_secret_1234")
    legacy = IntegrationFactory.create(
        agent=agent,
        provider="webhook",
        config={"public": {"url": HOOK}, "secrets": {"signing_secret": signing}},
    )
    other = IntegrationFactory.create(
        agent=agent, provider="slack", config={"public": {"url": "x"}, "secrets": {}}
    )
    migration = _migration()

    migration.url_to_secrets(apps, None)
    moved = AgentIntegration.objects.get(pk=legacy.pk).config
    migration.url_to_public(apps, None)
    back = AgentIntegration.objects.get(pk=legacy.pk).config

    assert moved["public"] == {}
    assert decrypt(moved["secrets"]["url"]) == HOOK
    assert moved["secrets"]["signing_secret"] == signing
    assert HOOK not in json.dumps(moved)
    assert AgentIntegration.objects.get(pk=other.pk).config["public"] == {"url": "x"}
    assert back == {"public": {"url": HOOK}, "secrets": {"signing_secret": signing}}


def test_a_url_still_stored_in_clear_is_encrypted_by_the_next_change(agent: A1Agent) -> None:
    legacy = IntegrationFactory.create(
        agent=agent, provider="webhook", config={"public": {"url": HOOK}, "secrets": {}}
    )
    from integrations.services import integration_update

    integration_update(integration_id=legacy.pk, config={"signing_secret": "whsec_x_12345678"})
    stored = AgentIntegration.objects.get(pk=legacy.pk).config

    assert stored["public"] == {}
    assert decrypt(stored["secrets"]["url"]) == HOOK


def test_services_refuse_internal_targets_too(agent: A1Agent) -> None:
    from integrations.errors import IntegrationInvalid

    with pytest.raises(IntegrationInvalid):
        integration_create(
            agent_id=agent.pk, provider="webhook", config={"url": "https://[::1]/hook"}
        )
