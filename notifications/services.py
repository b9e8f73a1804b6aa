"""Owners' webhook endpoints: register, change, rotate the signing secret, remove."""

import base64
import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.encryption import KeyRotation
from core.outbound import OutboundRefused, vet_url
from notifications.errors import EndpointInvalid, EndpointLimitReached
from notifications.events import EVENT_TYPES
from notifications.models import NotificationSettings, WebhookEndpoint

# A handful: enough for staging and production receivers, not a fan-out service.
MAX_ENDPOINTS_PER_OWNER = 5
UPDATABLE_FIELDS = frozenset({"url", "description", "event_types", "enabled"})


def signing_secret_generate() -> str:
    """A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_url(url: str) -> None:
    try:
        vet_url(url)
    except OutboundRefused as refusal:
        raise EndpointInvalid("url", str(refusal)) from None


def _check_event_types(event_types: list[str]) -> None:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise EndpointInvalid("event_types", f"Unknown event types: {', '.join(unknown)}.")


def _lock_owner(owner_id: str) -> None:
    """Serialise an owner's endpoint registrations, so that racing ones cannot pass the cap."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"webhook_endpoints:{owner_id}"],
        )


@transaction.atomic
def endpoint_create(
    *,
    owner_id: str,
    url: str,
    description: str = "",
    event_types: list[str] | None = None,
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; return it and its signing secret (shown this once)."""
    event_types = sorted(set(event_types or []))
    _check_event_types(event_types)
    _check_url(url)
    _lock_owner(owner_id)
    count = WebhookEndpoint.objects.filter(owner_id=owner_id).count()
    if count >= MAX_ENDPOINTS_PER_OWNER:
        raise EndpointLimitReached(
            f"An owner may have {MAX_ENDPOINTS_PER_OWNER} webhook endpoints; you have {count}.",
            limit=MAX_ENDPOINTS_PER_OWNER,
        )
    secret = signing_secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        owner_id=owner_id,
        url=url,
        description=description,
        event_types=event_types,
        enabled=enabled,
        secret=secret,
    )
    endpoint.refresh_from_db(fields=["created_at", "updated_at"])
    return endpoint, secret


@transaction.atomic
def endpoint_update(*, endpoint_id: Any, **changes: Any) -> WebhookEndpoint:
    """Change an endpoint's URL, description, event types or whether it is enabled."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"endpoint_update() got unexpected fields: {sorted(unknown)}")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    if "url" in changes:
        _check_url(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = sorted(set(changes["event_types"]))
        _check_event_types(changes["event_types"])
    for field, value in changes.items():
        setattr(endpoint, field, value)
    endpoint.updated_at = timezone.now()
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(*, endpoint_id: Any) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new signing secret (returned this once); the current one keeps
    signing beside it for WEBHOOK_SECRET_GRACE_SECONDS."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    secret = signing_secret_generate()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + dt.timedelta(
        seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS
    )
    endpoint.secret = secret
    endpoint.updated_at = timezone.now()
    endpoint.save()
    return endpoint, secret


@transaction.atomic
def endpoint_delete(*, endpoint_id: Any) -> None:
    """Remove the endpoint with its deliveries and their log."""
    WebhookEndpoint.objects.filter(pk=endpoint_id).delete()


def signing_secrets(endpoint: WebhookEndpoint, *, now: dt.datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one in its grace."""
    current = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        current.append(endpoint.previous_secret)
    return current


ENDPOINT_SECRETS_BATCH = """
SELECT id, secret, previous_secret FROM webhook_endpoints
WHERE %(last)s::uuid IS NULL OR id > %(last)s::uuid
ORDER BY id LIMIT %(limit)s
"""


@transaction.atomic
def endpoint_secrets_reencrypt(
    *, after_id: Any, limit: int, rotation: KeyRotation, dry_run: bool = False
) -> list[Any]:
    """Move one batch of endpoints' signing secrets (ids after `after_id`) to the newest key,
    in its own transaction; return the ids of the batch, in order (`rotate_encryption_key`)."""
    lock = "" if dry_run else " FOR NO KEY UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(ENDPOINT_SECRETS_BATCH + lock, {"last": after_id, "limit": limit})
        rows = cursor.fetchall()
        changes = []
        for endpoint_id, secret, previous in rows:
            new_secret = rotation.rotated(secret, f"webhook_endpoints.secret of {endpoint_id}")
            new_previous = previous and rotation.rotated(
                previous, f"webhook_endpoints.previous_secret of {endpoint_id}"
            )
            if new_secret is not None or new_previous:
                changes.append((new_secret, new_previous or None, endpoint_id))
        if changes and not dry_run:
            cursor.executemany(
                "UPDATE webhook_endpoints SET secret = COALESCE(%s, secret), "
                "previous_secret = COALESCE(%s, previous_secret) WHERE id = %s",
                changes,
            )
    return [row[0] for row in rows]


# --- what an owner is told -------------------------------------------------------------------


def notification_settings_for(owner_id: str) -> NotificationSettings:
    """The owner's choices (the defaults, unsaved, when they made none)."""
    stored = NotificationSettings.objects.filter(owner_id=owner_id).first()
    return stored or NotificationSettings(owner_id=owner_id)


@transaction.atomic
def notification_settings_update(
    *,
    owner_id: str,
    usage_email_enabled: bool | None = None,
    usage_thresholds: list[int] | None = None,
) -> NotificationSettings:
    """Change the owner's choices; thresholds are kept sorted and distinct. A change of
    thresholds applies to counts from now on (an alert already sent is not sent again)."""
    changes: dict[str, Any] = {"updated_at": timezone.now()}
    if usage_email_enabled is not None:
        changes["usage_email_enabled"] = usage_email_enabled
    if usage_thresholds is not None:
        changes["usage_thresholds"] = sorted(set(usage_thresholds))
    settings_row, _created = NotificationSettings.objects.update_or_create(
        owner_id=owner_id, defaults=changes
    )
    return settings_row
