"""Field encryption: MultiFernet over FIELD_ENCRYPTION_KEYS, keyed lookup hashes."""

import base64
import os
import re
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from a1zap.settings import base as base_settings
from a1zap.settings import test as test_settings
from agents.models import A1Agent
from core.encryption import DecryptionError, decrypt, encrypt, lookup_hash, reencrypt
from tests.factories import AgentFactory


def test_encrypt_round_trips_and_is_not_deterministic() -> None:
    first, second = encrypt("hello@example.com"), encrypt("hello@example.com")

    assert first != second
    assert decrypt(first) == decrypt(second) == "hello@example.com"


def test_an_old_key_still_decrypts_after_rotation_and_reencrypt_moves_to_the_new(
    settings: SettingsWrapper,
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    ciphertext = encrypt("secret")

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    rotated = reencrypt(ciphertext)

    assert decrypt(ciphertext) == "secret"
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert decrypt(rotated) == "secret"
    with pytest.raises(DecryptionError):
        decrypt(ciphertext)


def test_missing_or_invalid_keys_fail_with_a_clear_message(settings: SettingsWrapper) -> None:
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        encrypt("x")

    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="invalid key"):
        encrypt("x")


def test_lookup_hash_ignores_case_and_surrounding_space() -> None:
    assert lookup_hash(" Bot@Example.COM ") == lookup_hash("bot@example.com")
    assert lookup_hash("bot@example.com") != lookup_hash("other@example.com")
    assert lookup_hash(None) is None
    assert lookup_hash("") is None


@pytest.mark.django_db
def test_agent_contact_fields_are_ciphertext_in_the_row_and_plaintext_in_python() -> None:
    agent = AgentFactory.create(email="a@example.com", phone_number="+15550100")

    with connection.cursor() as cursor:
        cursor.execute("SELECT email, phone_number FROM a1_agents WHERE id = %s", [agent.pk])
        email, phone = cursor.fetchone()

    assert email.startswith("gAAAAA")
    assert "example" not in email
    assert "5550100" not in phone
    assert A1Agent.objects.get(pk=agent.pk).email == "a@example.com"


# --- production refuses every key that ships in the repository ------------------------------

TEST_SETTINGS_KEY = test_settings.FIELD_ENCRYPTION_KEYS[0]
FERNET_SHAPED = re.compile(rb"(?<![A-Za-z0-9_+/-])[A-Za-z0-9_+/-]{43}=")


def _production_check(**overrides: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "a1zap.settings.production",
        "SECRET_KEY": "prod-" + "k3y-" * 20,
        "STACK_AUTH_PROJECT_ID": "project",
        "ALLOWED_HOSTS": "api.a1zap.com",
        "CELERY_BROKER_URL": "redis://broker.internal:6379/1",
    }
    for name in ("DEBUG", "FIELD_ENCRYPTION_KEYS", "WEBHOOK_ALLOW_INSECURE_TARGETS"):
        environment.pop(name, None)
    environment.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=django_settings.BASE_DIR, env=environment,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_every_fernet_key_in_the_repository_is_listed_as_shipped() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        check=True,
    )
    files = listed.stdout.split(b"\0")
    found = set()
    for name in filter(None, files):
        path = django_settings.BASE_DIR / name.decode()
        if path.is_file():
            for match in FERNET_SHAPED.findall(path.read_bytes()):
                if (
                    len(base64.urlsafe_b64decode(match.replace(b"+", b"-").replace(b"/", b"_")))
                    == 32
                ):
                    found.add(match.decode())

    assert found, "the development key at least ships in the repository"
    assert found <= set(base_settings.SHIPPED_FIELD_ENCRYPTION_KEYS)
    assert TEST_SETTINGS_KEY in base_settings.SHIPPED_FIELD_ENCRYPTION_KEYS


@pytest.mark.parametrize(
    "overrides",
    [
        {"DEBUG": "true"},
        {"FIELD_ENCRYPTION_KEYS": base_settings.DEV_FIELD_ENCRYPTION_KEY},
        {"FIELD_ENCRYPTION_KEYS": f" {base_settings.DEV_FIELD_ENCRYPTION_KEY} "},
        {"FIELD_ENCRYPTION_KEYS": f"{Fernet.generate_key().decode()},{TEST_SETTINGS_KEY}"},
    ],
    ids=["debug-default", "explicit", "padded", "among-others"],
)
def test_production_refuses_a_key_that_ships_in_the_repository(overrides: dict[str, str]) -> None:
    result = _production_check(**overrides)

    assert result.returncode != 0
    assert "ships in the repository" in result.stderr


def test_production_refuses_to_start_without_a_broker_url() -> None:
    result = _production_check(FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
                               CELERY_BROKER_URL="")  # fmt: skip

    assert result.returncode != 0
    assert "CELERY_BROKER_URL" in result.stderr


def test_production_starts_with_a_fresh_key_and_refuses_insecure_outbound_targets() -> None:
    fresh = Fernet.generate_key().decode()

    assert _production_check(FIELD_ENCRYPTION_KEYS=fresh).returncode == 0
    insecure = _production_check(FIELD_ENCRYPTION_KEYS=fresh, WEBHOOK_ALLOW_INSECURE_TARGETS="true")
    assert insecure.returncode != 0
    assert "WEBHOOK_ALLOW_INSECURE_TARGETS" in insecure.stderr
