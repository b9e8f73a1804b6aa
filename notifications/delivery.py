"""One attempt to deliver an event to an endpoint, signed as Standard Webhooks says.

The delivery row is claimed first (its `next_attempt_at` is pushed past the attempt's
timeout, so a sweep or a redelivered message does not send it at the same time); the URL is
vetted again against what its name resolves to now, and the connection goes to the vetted
address. Timeouts, connection errors, 5xx and 429 (after its `Retry-After`) are retried with
backoff; any other answer ends the delivery. Every attempt is logged.
"""

import datetime as dt
import email.utils
import functools
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import certifi
import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from core.outbound import OutboundRefused, OutboundUnresolved, Target, vet_url
from jobs.retrying import retry_delay
from notifications.events import PING
from notifications.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from notifications.services import endpoint_health_record, signing_secrets

# What the log keeps of a response body.
RESPONSE_BODY_LIMIT = 1024


USER_AGENT = "A1Zap-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    """What became of an attempt: `retry_in` seconds until the next, or None (done)."""

    summary: str
    retry_in: float | None = None


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    body: str
    error: str
    retry_after: float | None


def _claim(delivery_id: str, *, due_only: bool) -> WebhookDelivery | None:
    now = timezone.now()
    with transaction.atomic():
        rows = WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        if due_only:
            rows = rows.filter(next_attempt_at__lte=now)
        delivery = (
            # Only the delivery row: locking its endpoint too would make deliveries to one
            # endpoint skip each other.
            rows.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint")
            .first()
        )
        if delivery is None:
            return None
        lease = settings.WEBHOOK_TIMEOUT_SECONDS + settings.WEBHOOK_CLAIM_MARGIN_SECONDS
        delivery.next_attempt_at = now + dt.timedelta(seconds=lease)
        delivery.attempts = F("attempts") + 1
        delivery.save(update_fields=["next_attempt_at", "attempts"])
        delivery.refresh_from_db(fields=["attempts"])
    return delivery


def signed_headers(delivery: WebhookDelivery, body: str, *, now: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers: the event id, the time, a signature per live secret."""
    event_id = delivery.event_id
    signatures = [
        Webhook(secret).sign(msg_id=event_id, timestamp=now, data=body)
        for secret in signing_secrets(delivery.endpoint, now=now)
    ]
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - timezone.now()).total_seconds(), 0.0)


def _address_url(url: str, target: Target) -> str:
    """The URL with its host replaced by the vetted address (so nothing resolves it again)."""
    parts = urlsplit(url)
    host = f"[{target.address}]" if ":" in target.address else target.address
    netloc = f"{host}:{target.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The certificate store, read once per process: reading it for every delivery cost
    about 20 ms, half of a delivery (`make bench`)."""
    return ssl.create_default_context(cafile=certifi.where())


def _post(url: str, target: Target, headers: dict[str, str], body: str) -> Answer:
    parts = urlsplit(url)
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    try:
        with httpx.Client(
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False, verify=_tls_context()
        ) as client:
            response = client.post(
                _address_url(url, target),
                content=body.encode(),
                headers={**headers, "host": parts.netloc.rsplit("@", 1)[-1]},
                extensions=extensions,
            )
    except httpx.TimeoutException:
        return Answer(None, "", f"Timed out after {settings.WEBHOOK_TIMEOUT_SECONDS:g} s.", None)
    except httpx.HTTPError as error:
        return Answer(None, "", f"{type(error).__name__}: {error}"[:RESPONSE_BODY_LIMIT], None)
    return Answer(
        response.status_code,
        response.text[:RESPONSE_BODY_LIMIT],
        "",
        _retry_after(response.headers.get("retry-after")),
    )


def _retryable(answer: Answer) -> bool:
    code = answer.status_code
    return code is None or code >= 500 or code == 429


def delivery_attempt(*, delivery_id: str, due_only: bool = True) -> Outcome:
    """Attempt one pending delivery (if it is due, unless `due_only` is off) and log it."""
    delivery = _claim(delivery_id, due_only=due_only)
    if delivery is None:
        return Outcome("nothing to do")
    body = json.dumps(delivery.event.payload, separators=(",", ":"))
    started = time.monotonic()
    if not delivery.endpoint.enabled and delivery.event.type != PING:
        # Disabled by its owner, or for failing: nothing more is sent (a replay after it is
        # enabled again sends it). A ping tests the endpoint whatever its state.
        answer = Answer(None, "", "The endpoint is disabled.", None)
        return _finish(delivery, answer, started, succeeded=False, retry=False, health=False)
    try:
        target = vet_url(delivery.endpoint.url)
    except OutboundUnresolved as problem:
        answer = Answer(None, "", str(problem), None)
    except OutboundRefused as refusal:
        answer = Answer(None, "", f"Refused: {refusal}", None)
        return _finish(delivery, answer, started, succeeded=False, retry=False)
    else:
        headers = signed_headers(delivery, body, now=timezone.now())
        answer = _post(delivery.endpoint.url, target, headers, body)
    code = answer.status_code
    if code is not None and 200 <= code < 300:
        return _finish(delivery, answer, started, succeeded=True, retry=False)
    return _finish(delivery, answer, started, succeeded=False, retry=_retryable(answer))


def _finish(
    delivery: WebhookDelivery,
    answer: Answer,
    started: float,
    *,
    succeeded: bool,
    retry: bool,
    health: bool = True,
) -> Outcome:
    latency_ms = int((time.monotonic() - started) * 1000)
    # The first attempt and WEBHOOK_MAX_RETRIES retries, about a day.
    retry = retry and delivery.attempts <= settings.WEBHOOK_MAX_RETRIES
    delay = None
    if retry:
        delay = retry_delay(
            delivery.attempts,
            first=settings.WEBHOOK_RETRY_FIRST_DELAY,
            cap=settings.WEBHOOK_RETRY_MAX_DELAY,
        )
        if answer.retry_after is not None:
            delay = min(max(delay, answer.retry_after), settings.WEBHOOK_RETRY_MAX_DELAY)
    status = (
        DeliveryStatus.SUCCEEDED
        if succeeded
        else DeliveryStatus.PENDING
        if retry
        else DeliveryStatus.FAILED
    )
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            status_code=answer.status_code,
            latency_ms=latency_ms,
            response_body=answer.body,
            error=answer.error,
            succeeded=succeeded,
        )
        fields: dict[str, Any] = {"status": status}
        if delay is not None:
            fields["next_attempt_at"] = timezone.now() + dt.timedelta(seconds=delay)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        if health:
            endpoint_health_record(delivery.endpoint_id, succeeded=succeeded)
    what = f"HTTP {answer.status_code}" if answer.status_code is not None else answer.error
    return Outcome(f"{status}: {what}", retry_in=delay)


def deliveries_due(limit: int = 1000) -> list[str]:
    """Ids of pending deliveries whose time has come (their message lost, or not yet sent)."""
    rows = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at")
    return [str(pk) for pk in rows.values_list("pk", flat=True)[:limit]]


@transaction.atomic
def delivery_replay(*, delivery_id: Any) -> bool:
    """Make the delivery pending again, due now with its retries afresh, and queue it on
    commit; False if there is no such delivery."""
    from jobs.enqueue import enqueue_on_commit
    from notifications.tasks import webhook_deliver

    replayed = WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    if replayed:
        enqueue_on_commit(webhook_deliver, delivery_id=str(delivery_id))
    return bool(replayed)


# The most events one replay sends (the oldest first); replay again from the last one's time.
REPLAY_LIMIT = 1000

REPLAY_SQL = """
INSERT INTO webhook_deliveries AS d (id, event_id, endpoint_id, status, attempts, next_attempt_at)
SELECT gen_random_uuid(), e.id, %(endpoint)s, 'pending', 0, now()
FROM (
    SELECT id FROM webhook_events
    WHERE owner_id = %(owner)s AND type <> 'ping'
      AND (%(event)s::text IS NULL OR id = %(event)s::text)
      AND (%(since)s::timestamptz IS NULL OR (
            created_at >= %(since)s::timestamptz
            AND (CASE WHEN cardinality(%(types)s::text[]) = 0
                      THEN NOT (type = ANY(%(opt_in)s::text[]))
                      ELSE type = ANY(%(types)s::text[]) END)))
    ORDER BY created_at, id
    LIMIT %(limit)s
) e
ON CONFLICT (event_id, endpoint_id) DO UPDATE
    SET status = 'pending', attempts = 0, next_attempt_at = now()
RETURNING d.id
"""


@transaction.atomic
def deliveries_replay(
    *, endpoint: Any, event_id: str | None = None, since: dt.datetime | None = None
) -> int:
    """Deliver the owner's event (`event_id`), or every event since `since` that the endpoint
    subscribes to, to this endpoint afresh (due now, retries anew), queued on commit; return
    how many. One statement: existing deliveries are reset, missing ones created."""
    from jobs.enqueue import enqueue_on_commit
    from notifications.events import OPT_IN_EVENT_TYPES
    from notifications.tasks import webhook_deliver

    with connection.cursor() as cursor:
        cursor.execute(
            REPLAY_SQL,
            {
                "endpoint": endpoint.pk,
                "owner": endpoint.owner_id,
                "event": event_id,
                "since": since,
                "types": list(endpoint.event_types),
                "opt_in": sorted(OPT_IN_EVENT_TYPES),
                "limit": REPLAY_LIMIT,
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
    for delivery_id in ids:
        enqueue_on_commit(webhook_deliver, delivery_id=str(delivery_id))
    return len(ids)
