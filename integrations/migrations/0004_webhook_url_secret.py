"""Move every webhook integration's `url` from `public` (shown in clear) to `secrets`
(Fernet ciphertext, masked everywhere): an incoming-webhook URL is a bearer credential.

Rows are locked and rewritten in batches; the reverse decrypts them back. Only rows that hold
a clear `url` need FIELD_ENCRYPTION_KEYS, so a database without any migrates without keys.
"""

from typing import Any

from django.db import migrations

from core.encryption import decrypt, encrypt

BATCH = 500


def _rewrite(apps: Any, move: Any, section: str) -> None:
    integration_model = apps.get_model("integrations", "AgentIntegration")
    rows = integration_model.objects.filter(
        provider="webhook", **{f"config__{section}__has_key": "url"}
    )
    while True:
        batch = list(rows.select_for_update().order_by("pk")[:BATCH])
        if not batch:
            return
        for integration in batch:
            integration.config = move(dict(integration.config))
        integration_model.objects.bulk_update(batch, ["config"])


def _to_secrets(config: dict[str, Any]) -> dict[str, Any]:
    public, secrets = dict(config.get("public") or {}), dict(config.get("secrets") or {})
    url = public.pop("url")
    secrets.setdefault("url", encrypt(str(url)))
    return {**config, "public": public, "secrets": secrets}


def _to_public(config: dict[str, Any]) -> dict[str, Any]:
    public, secrets = dict(config.get("public") or {}), dict(config.get("secrets") or {})
    public["url"] = decrypt(secrets.pop("url"))
    return {**config, "public": public, "secrets": secrets}


def url_to_secrets(apps: Any, schema_editor: Any) -> None:
    _rewrite(apps, _to_secrets, "public")


def url_to_public(apps: Any, schema_editor: Any) -> None:
    _rewrite(apps, _to_public, "secrets")


class Migration(migrations.Migration):
    dependencies = [("integrations", "0003_provider_and_status_checks")]

    operations = [migrations.RunPython(url_to_secrets, url_to_public, elidable=False)]
