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
from notifications.email import owner_email_send
from notifications.errors import EndpointInvalid, EndpointLimitReached
from notifications.events import EVENT_TYPES
from notifications.models import NotificationSettings, WebhookEndpoint, WebhookEvent

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
    if changes.get("enabled"):
        # Enabled again by its owner: its failures start afresh.
        endpoint.failing_since = None
        endpoint.disabled_at = None
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


def endpoint_health_record(endpoint_id: Any, *, succeeded: bool) -> bool:
    """Note how the endpoint's last attempt went, in the attempt's transaction. An endpoint
    whose attempts have all failed for WEBHOOK_DISABLE_AFTER_SECONDS is disabled, once, and
    its owner emailed after commit; return True when this call disabled it."""
    rows = WebhookEndpoint.objects.filter(pk=endpoint_id)
    if succeeded:
        rows.filter(failing_since__isnull=False).update(failing_since=None)
        return False
    now = timezone.now()
    rows.filter(failing_since__isnull=True).update(failing_since=now)
    cutoff = now - dt.timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    disabled = rows.filter(enabled=True, failing_since__lte=cutoff).update(
        enabled=False, disabled_at=now, updated_at=now
    )
    if disabled:
        from jobs.enqueue import enqueue_on_commit
        from notifications.tasks import webhook_endpoint_disabled_email

        enqueue_on_commit(webhook_endpoint_disabled_email, endpoint_id=str(endpoint_id))
    return bool(disabled)


def endpoint_disabled_email(*, endpoint_id: Any) -> str:
    """Tell the owner that their endpoint was disabled for failing (an email: the endpoint
    itself is what fails)."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, disabled_at__isnull=False).first()
    if endpoint is None:
        return "not disabled"
    days = settings.WEBHOOK_DISABLE_AFTER_SECONDS / 86400
    body = (
        f"Your webhook endpoint {endpoint.url} has failed every delivery for {days:g} days, "
        "so we stopped sending it events. Fix the receiver, enable the endpoint again "
        f"(PATCH /api/v1/webhooks/endpoints/{endpoint.pk}/ with enabled true) and replay what "
        "it missed (POST .../replay/ with since)."
    )
    address = owner_email_send(
        owner_id=endpoint.owner_id, subject="A1Zap: a webhook endpoint was disabled", body=body
    )
    return f"emailed {address}" if address else "no address"


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


def webhook_events_prune(*, batch_size: int = 10_000) -> tuple[int, dt.datetime]:
    """Forget events older than WEBHOOK_EVENTS_KEPT_DAYS, with their deliveries and attempt
    log (the database cascades); return (deleted, cutoff). Replays reach back this far."""
    from core.batched_delete import delete_in_batches

    cutoff = timezone.now() - dt.timedelta(days=settings.WEBHOOK_EVENTS_KEPT_DAYS)
    deleted = delete_in_batches(
        table="webhook_events", key=("id",), older="created_at", cutoff=cutoff,
        batch_size=batch_size,
    )  # fmt: skip
    return deleted, cutoff


def owner_notifications_delete(*, owner_id: str) -> int:
    """Forget a deleted user's endpoints (with their deliveries and log), events and choices,
    in the caller's transaction, so nothing more is sent to them; return the endpoints."""
    endpoints, _ = WebhookEndpoint.objects.filter(owner_id=owner_id).delete()
    WebhookEvent.objects.filter(owner_id=owner_id).delete()
    NotificationSettings.objects.filter(owner_id=owner_id).delete()
    return int(endpoints)
