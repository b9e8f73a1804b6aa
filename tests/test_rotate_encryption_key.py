"""`manage.py rotate_encryption_key`: every encrypted value moves to the newest key."""

import json
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from agents.models import A1Agent
from core.encryption import decrypt
from integrations.models import AgentIntegration
from integrations.providers import config_masked
from integrations.services import integration_create
from notifications.models import WebhookEndpoint
from notifications.services import endpoint_create, endpoint_rotate_secret
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
SLACK = {"bot_token": "xoxb-rotate-me-SECRET-0001", "signing_secret": "signing-SECRET-0002"}


def raw_agents() -> dict[Any, tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, email, phone_number, whatsapp_number FROM a1_agents")
        return {row[0]: row[1:] for row in cursor.fetchall()}


def raw_secrets() -> dict[Any, dict[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, config::text FROM agent_integrations")
        return {row[0]: json.loads(row[1])["secrets"] for row in cursor.fetchall()}


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_encryption_key", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def encrypted_under_the_old_key(settings: SettingsWrapper) -> list[A1Agent]:
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    agents = [
        AgentFactory.create(
            email=f"bot{n}@example.com", phone_number=f"+1555010{n}", whatsapp_number=None
        )
        for n in range(5)
    ]
    agents.append(AgentFactory.create())  # no contact details at all
    for agent in agents[:3]:
        integration_create(agent_id=agent.pk, provider="slack", config=SLACK)
    endpoint, _ = endpoint_create(owner_id="owner_w", url="https://1.1.1.1/hooks")
    endpoint_rotate_secret(endpoint_id=endpoint.pk)  # a current and a previous secret
    return agents


def test_rotation_reencrypts_contact_fields_and_secrets_under_the_newest_key(
    settings: SettingsWrapper, encrypted_under_the_old_key: list[A1Agent]
) -> None:
    agents_before, secrets_before = raw_agents(), raw_secrets()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    summary = rotate("--batch-size", "2")

    assert summary.strip() == (
        "Re-encrypted 10 agent contact values, 6 integration secrets and 2 webhook signing "
        "secrets; 0 already under the newest key; 0 unreadable."
    )
    agents_after, secrets_after = raw_agents(), raw_secrets()
    for agent_id, values in agents_before.items():
        for before, after in zip(values, agents_after[agent_id], strict=True):
            assert (before is None) == (after is None)
            if before is not None:
                assert after != before
                assert decrypt(after) == decrypt(before)
    for integration_id, secrets in secrets_before.items():
        assert set(secrets_after[integration_id]) == set(secrets)
        for name, before in secrets.items():
            assert secrets_after[integration_id][name] != before

    # Once the old key is gone, everything still reads.
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    emails = set(A1Agent.objects.exclude(email=None).values_list("email", flat=True))
    assert emails == {f"bot{n}@example.com" for n in range(5)}
    for secrets in secrets_after.values():
        assert decrypt(secrets["bot_token"]) == SLACK["bot_token"]
        assert decrypt(secrets["signing_secret"]) == SLACK["signing_secret"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.previous_secret is not None
    assert endpoint.previous_secret.startswith("whsec_")
    for integration in AgentIntegration.objects.all():
        assert config_masked(integration.config)["bot_token"] == "••••" + SLACK["bot_token"][-4:]


def test_a_second_run_finds_nothing_to_do_and_changes_nothing(
    settings: SettingsWrapper, encrypted_under_the_old_key: list[A1Agent]
) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    rotate()
    agents_once, secrets_once = raw_agents(), raw_secrets()

    summary = rotate("--batch-size", "1")

    assert "Re-encrypted 0 agent contact values, 0 integration secrets and 0 webhook" in summary
    assert "18 already under the newest key" in summary
    assert (raw_agents(), raw_secrets()) == (agents_once, secrets_once)


def test_an_interrupted_rotation_finishes_on_the_next_run(
    settings: SettingsWrapper, encrypted_under_the_old_key: list[A1Agent]
) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    # As if a first run had rotated one agent before it was stopped.
    first = encrypted_under_the_old_key[0]
    A1Agent.objects.filter(pk=first.pk).update(email="bot0@example.com")  # encrypted now

    summary = rotate()

    assert "Re-encrypted 9 agent contact values, 6 integration secrets" in summary
    assert "1 already under the newest key" in summary
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert A1Agent.objects.get(pk=first.pk).email == "bot0@example.com"


def test_a_dry_run_counts_but_writes_nothing(
    settings: SettingsWrapper, encrypted_under_the_old_key: list[A1Agent]
) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    agents_before, secrets_before = raw_agents(), raw_secrets()

    summary = rotate("--dry-run")

    assert summary.startswith("Would re-encrypt 10 agent contact values, 6 integration secrets")
    assert (raw_agents(), raw_secrets()) == (agents_before, secrets_before)


def test_values_no_key_opens_are_reported_and_left_alone(
    settings: SettingsWrapper, encrypted_under_the_old_key: list[A1Agent]
) -> None:
    lost = encrypted_under_the_old_key[1]
    # Encrypted under a key nobody configured any more.
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    A1Agent.objects.filter(pk=lost.pk).update(phone_number="+15550101")
    (stray,) = raw_agents()[lost.pk][1:2]
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    with pytest.raises(CommandError, match="1 values are not ciphertext"):
        rotate()

    assert raw_agents()[lost.pk][1] == stray
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert decrypt(raw_agents()[lost.pk][0]) == "bot1@example.com"


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(CommandError, match="batch-size"):
        rotate("--batch-size", "0")
