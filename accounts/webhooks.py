"""Receive Stack Auth's webhooks (sent through Svix) at `POST /stack-auth/webhook/`.

`user.created` and `user.updated` refresh the user mirror; `user.deleted` ends the user's
subscription and deletes their agents. The `team.*`, `team_membership.*` and
`team_permission.*` events keep the team mirror (`teams`; `team.deleted` also ends the
team's subscription and deletes its agents, see docs/teams.md). Other events are
acknowledged and ignored. Nothing is read from the body before its Svix signature is
verified.

A message (one `svix-id`, the same on every delivery attempt) is applied once: a repeat is
answered `{"status": "duplicate"}` and changes nothing. User and team events are applied in
the order Stack Auth created them, read from the message id, not in the order they arrive.
"""

import datetime as dt
import json
import logging
import string
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from svix.webhooks import Webhook, WebhookVerificationError

from accounts.services import (
    stack_team_delete,
    stack_user_delete,
    stack_user_hold_live,
    stack_user_sync,
    webhook_message_claim,
)
from audit.actors import Actor
from teams.services import membership_set, permission_set, team_sync

logger = logging.getLogger(__name__)

SIGNATURE_HEADERS = ("svix-id", "svix-timestamp", "svix-signature")
USER_UPSERT_EVENTS = frozenset({"user.created", "user.updated"})
USER_DELETED_EVENT = "user.deleted"
USER_EVENTS = USER_UPSERT_EVENTS | {USER_DELETED_EVENT}
TEAM_UPSERT_EVENTS = frozenset({"team.created", "team.updated"})
TEAM_DELETED_EVENT = "team.deleted"
# The event type and whether it adds (a membership, a permission) or takes away.
MEMBERSHIP_EVENTS = {"team_membership.created": True, "team_membership.deleted": False}
PERMISSION_EVENTS = {"team_permission.created": True, "team_permission.deleted": False}

# Svix message ids are `msg_` and a KSUID: 20 bytes in 27 base62 digits, the first 4 bytes
# the second it was created (since the KSUID epoch), the rest finer time and randomness.
KSUID_EPOCH = 1_400_000_000
KSUID_DIGITS = string.digits + string.ascii_uppercase + string.ascii_lowercase
KSUID_LENGTH = 27
KSUID_BITS = 160
# A message is created before it is signed; this much clock difference is tolerated.
CLOCK_SKEW = dt.timedelta(minutes=5)


class InvalidPayload(Exception):
    """The signed body is not the event shape we expect."""


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


def _optional_text(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    # PostgreSQL text cannot hold NUL characters.
    if value is not None and (not isinstance(value, str) or "\x00" in value):
        raise InvalidPayload(f"`data.{field}` must be a string or null.")
    return value


def _required_text(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidPayload(f"`data.{field}` is required.")
    return value


# A team change, applied in the message's transaction: (message id, when it was created)
# -> what to log.
TeamChange = Callable[[str, dt.datetime], str]


def _team_change(event_type: str, data: Any) -> TeamChange | None:
    """The change a team, membership or permission event makes, or None for other events;
    InvalidPayload when its data is not Stack Auth's shape."""
    team_event = event_type in TEAM_UPSERT_EVENTS or event_type == TEAM_DELETED_EVENT
    if not (team_event or event_type in MEMBERSHIP_EVENTS or event_type in PERMISSION_EVENTS):
        return None
    if not isinstance(data, dict):
        raise InvalidPayload("The body must have a `data` object.")
    if team_event:
        team_id = _required_text(data, "id")
        if event_type == TEAM_DELETED_EVENT:

            def delete(message_id: str, event_at: dt.datetime) -> str:
                deleted = stack_team_delete(team_id=team_id, actor=Actor.stack_auth(message_id))
                return f"team {team_id} deleted with {deleted} agents"

            return delete
        name = _optional_text(data, "display_name")
        image = _optional_text(data, "profile_image_url")

        def sync(message_id: str, event_at: dt.datetime) -> str:
            applied = team_sync(
                team_id=team_id, display_name=name, profile_image_url=image,
                event_at=event_at, event_id=message_id,
            )  # fmt: skip
            return f"team {team_id} {'synced' if applied else 'not applied'}"

        return sync
    team_id, user_id = _required_text(data, "team_id"), _required_text(data, "user_id")
    if event_type in MEMBERSHIP_EVENTS:
        is_member = MEMBERSHIP_EVENTS[event_type]

        def membership(message_id: str, event_at: dt.datetime) -> str:
            if not stack_user_hold_live(user_id):
                return f"membership of {user_id} in {team_id} not applied: the user is deleted"
            applied = membership_set(
                team_id=team_id, user_id=user_id, is_member=is_member,
                event_at=event_at, event_id=message_id,
            )  # fmt: skip
            return f"membership of {user_id} in {team_id} {'set' if applied else 'not applied'}"

        return membership
    permission_id, granted = _required_text(data, "id"), PERMISSION_EVENTS[event_type]

    def permission(message_id: str, event_at: dt.datetime) -> str:
        if not stack_user_hold_live(user_id):
            return f"permission {permission_id} of {user_id} not applied: the user is deleted"
        applied = permission_set(
            team_id=team_id, user_id=user_id, permission_id=permission_id, granted=granted,
            event_at=event_at, event_id=message_id,
        )  # fmt: skip
        return f"permission {permission_id} of {user_id} in {team_id} " + (
            "set" if applied else "not applied"
        )

    return permission


def _parse_event(body: bytes) -> tuple[str, Any]:
    """Return the event's type and data, or raise InvalidPayload."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidPayload("The body is not valid JSON.") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise InvalidPayload("The body must be an object with a string `type`.")
    return event["type"], event.get("data")


def _user_fields(data: Any) -> tuple[str, str | None, str | None]:
    """Return a user event's id, primary email and display name, or raise InvalidPayload."""
    if not isinstance(data, dict):
        raise InvalidPayload("The body must have a `data` object.")
    user_id = data.get("id")
    if not isinstance(user_id, str) or not user_id or "\x00" in user_id:
        raise InvalidPayload("`data.id` is required.")
    return user_id, _optional_text(data, "primary_email"), _optional_text(data, "display_name")


def message_created_at(message_id: str, signed_at: dt.datetime) -> dt.datetime:
    """Return when the message was created, to order it among the user's other messages.

    The `svix-timestamp` header says when this delivery attempt was signed, and a retry is
    signed anew, so it cannot order messages; the id's KSUID holds the creation second (ties
    within it are broken by the id itself). An id that is not a KSUID, or that claims a time
    after it was signed, is ordered by its signing time instead.
    """
    digits = message_id.removeprefix("msg_")
    if len(digits) == KSUID_LENGTH and all(digit in KSUID_DIGITS for digit in digits):
        value = 0
        for digit in digits:
            value = value * len(KSUID_DIGITS) + KSUID_DIGITS.index(digit)
        if value < 1 << KSUID_BITS:
            seconds = KSUID_EPOCH + (value >> (KSUID_BITS - 32))
            created_at = dt.datetime.fromtimestamp(seconds, dt.UTC)
            if created_at <= signed_at + CLOCK_SKEW:
                return created_at
    return signed_at


@csrf_exempt
def stack_auth_webhook(request: HttpRequest) -> JsonResponse:
    """Verify a Stack Auth webhook and apply it to the user mirror and the user's data."""
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Only POST is allowed.")
        response["Allow"] = "POST"
        return response

    secret: str = settings.STACK_AUTH_WEBHOOK_SECRET
    if not secret:
        return _error(
            503,
            "webhook_unavailable",
            "Stack Auth webhooks are not accepted: STACK_AUTH_WEBHOOK_SECRET is not configured.",
        )
    try:
        webhook = Webhook(secret)
    except Exception:
        # svix refuses a secret that is not base64; that is our configuration, not the sender's.
        logger.exception("STACK_AUTH_WEBHOOK_SECRET is not a valid Svix secret")
        return _error(
            503,
            "webhook_unavailable",
            "Stack Auth webhooks are not accepted: STACK_AUTH_WEBHOOK_SECRET is not valid.",
        )

    body = request.body
    headers = {name: request.headers.get(name, "") for name in SIGNATURE_HEADERS}
    try:
        webhook.verify(body, headers)
    # svix lets malformed signatures and non-UTF-8 bodies escape as ValueError.
    except (WebhookVerificationError, ValueError) as error:
        logger.info("Refused a Stack Auth webhook: %s", error)
        return _error(400, "invalid_signature", "The webhook signature is missing or invalid.")

    try:
        event_type, data = _parse_event(body)
        user = _user_fields(data) if event_type in USER_EVENTS else None
        team_change = _team_change(event_type, data)
    except InvalidPayload as error:
        return _error(400, "validation_error", str(error))

    message_id = headers["svix-id"]
    # Parsed as svix parses it (a float), which has just accepted it.
    signed_at = dt.datetime.fromtimestamp(float(headers["svix-timestamp"]), dt.UTC)
    event_at = message_created_at(message_id, signed_at)
    with transaction.atomic():
        if not webhook_message_claim(svix_id=message_id):
            logger.info("Stack Auth webhook %s was already applied", message_id)
            return JsonResponse({"status": "duplicate"})
        if team_change is not None:
            logger.info("Stack Auth webhook %s: %s", message_id, team_change(message_id, event_at))
        elif user is None:
            pass  # neither a user nor a team event: acknowledged, remembered and ignored
        elif event_type == USER_DELETED_EVENT:
            user_id, _, _ = user
            agents_deleted = stack_user_delete(
                user_id=user_id, actor=Actor.stack_auth(message_id),
                event_at=event_at, event_id=message_id,
            )  # fmt: skip
            logger.info("Stack Auth user %s deleted with %d agents", user_id, agents_deleted)
        else:
            user_id, email, display_name = user
            applied = stack_user_sync(
                user_id=user_id,
                email=email,
                display_name=display_name,
                event_at=event_at,
                event_id=message_id,
            )
            if not applied:
                logger.info(
                    "Stack Auth webhook %s not applied: user %s is deleted or has a newer one",
                    message_id,
                    user_id,
                )
    return JsonResponse({"status": "ok"})
