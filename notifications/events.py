"""The events owners can receive, and `event_emit`, which apps above call to write one.

An event is an outbox row (`webhook_events`) written in the caller's transaction, with one
delivery row per subscribed endpoint; the deliveries are queued when that transaction
commits (a rollback sends nothing) and the sweep sends what a lost message left pending.
"""

import datetime as dt
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from notifications.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

# The version of every event body; a change that breaks receivers gets a new one.
EVENT_VERSION = 1

EVENT_TYPES = (
    "agent.created",
    "agent.updated",
    "agent.paused",
    "agent.resumed",
    "agent.archived",
    "agent.deleted",
    "conversation.created",
    "message.created",
    "usage.threshold_reached",
    "subscription.updated",
    "invoice.payment_failed",
    "integration.error",
)
# Sent only to endpoints that name them in `event_types` (an empty list does not): high volume.
OPT_IN_EVENT_TYPES = frozenset({"message.created"})
# Sent only to the endpoint it tests (the `ping` action); nobody subscribes to it.
PING = "ping"


def event_body(*, event_id: str, event_type: str, data: dict[str, Any], at: dt.datetime) -> Any:
    """The JSON body of an event (Standard Webhooks' `type`, `timestamp`, `data`)."""
    body = {
        "id": event_id,
        "type": event_type,
        "version": EVENT_VERSION,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    # Through Django's encoder once, so that what is stored is plain JSON (UUIDs, dates).
    encoder = DjangoJSONEncoder()
    return _plain(body, encoder)


def _plain(value: Any, encoder: DjangoJSONEncoder) -> Any:
    if isinstance(value, dict):
        return {str(key): _plain(item, encoder) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, encoder) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return encoder.default(value)


def _write(
    *, owner_id: str, event_type: str, data: dict[str, Any], endpoints: list[WebhookEndpoint]
) -> WebhookEvent:
    from jobs.enqueue import enqueue_on_commit
    from notifications.tasks import webhook_deliver

    event_id = f"evt_{uuid.uuid4().hex}"
    event = WebhookEvent.objects.create(
        id=event_id,
        owner_id=owner_id,
        type=event_type,
        payload=event_body(event_id=event_id, event_type=event_type, data=data, at=timezone.now()),
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint) for endpoint in endpoints
    )
    for delivery in deliveries:
        enqueue_on_commit(webhook_deliver, delivery_id=str(delivery.id))
    return event


def subscribed(event_type: str) -> Q:
    """The endpoints that receive `event_type` (when enabled)."""
    named = Q(event_types__contains=[event_type])
    return named if event_type in OPT_IN_EVENT_TYPES else Q(event_types=[]) | named


@transaction.atomic(savepoint=False)
def event_emit(
    *, owner_id: str | Subquery, event_type: str, data: dict[str, Any]
) -> WebhookEvent | None:
    """Record an event of the owner's for each enabled endpoint subscribed to its type, in the
    caller's transaction; return it, or None when no endpoint wants it (nothing is written).

    `owner_id` may be a subquery (the owner of an agent, say), so that a caller on a hot path
    that knows only the agent asks the database once."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}")
    endpoints = list(
        WebhookEndpoint.objects.filter(owner_id=owner_id, enabled=True)
        .filter(subscribed(event_type))
        .order_by("id")
    )
    if not endpoints:
        return None
    return _write(
        owner_id=endpoints[0].owner_id, event_type=event_type, data=data, endpoints=endpoints
    )


@transaction.atomic(savepoint=False)
def event_ping(*, endpoint: WebhookEndpoint) -> WebhookEvent:
    """Send a `ping` event to this endpoint only (enabled or not)."""
    return _write(
        owner_id=endpoint.owner_id,
        event_type=PING,
        data={"endpoint_id": str(endpoint.id)},
        endpoints=[endpoint],
    )
