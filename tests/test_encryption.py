"""Field encryption: MultiFernet over FIELD_ENCRYPTION_KEYS, keyed lookup hashes."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from a1zap.encryption import DecryptionError, decrypt, encrypt, lookup_hash, reencrypt
from agents.models import A1Agent
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
