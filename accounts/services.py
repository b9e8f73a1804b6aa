"""Writes to the Stack Auth user mirror, and what deleting a user means for our data.

Tokens and webhooks both feed the mirror. Every write is one `INSERT … ON CONFLICT`
statement, so concurrent requests for the same user never race on a read-then-write, and a
deleted user's row (a tombstone) is never brought back by a late token or webhook.

Webhooks arrive at least once and in any order (Svix retries a failed delivery for about a
day). Each message is remembered by its Svix id in the transaction that applies it, so it is
applied once, and the user row keeps which message last set it, so an older one that
arrives late is not applied over a newer one.
"""

import datetime as dt

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from agent_templates.services import template_delete_all_for_owner
from agents.services import agent_delete_all_for_owner
from audit.actors import Actor
from billing.services import subscription_end_for_deleted_user
from core.batched_delete import delete_in_batches
from invoicing.stripe_cancellations import stripe_cancellation_send_on_commit
from notifications.services import owner_notifications_delete
from teams.services import memberships_end_for_user, team_delete

# Access tokens live about 10 minutes, so an hour covers every token issued before deletion.
DELETED_MARK_TIMEOUT = 3600


def deleted_user_cache_key(user_id: str) -> str:
    """Return the cache key that marks a user as deleted for the authentication layer."""
    return f"stack_auth:deleted:{user_id}"


@transaction.atomic
def stack_user_touch(
    *,
    user_id: str,
    email: str | None,
    display_name: str | None,
    issued_at: dt.datetime | None = None,
) -> bool:
    """Record that the user was seen now, with the email and name of their token.

    A token issued before the last webhook applied to the user (`last_event_at`) carries
    what that webhook replaced, so its email and name are not written back over it; only
    `last_seen_at` moves. Return False, and change nothing, when the user is deleted (their
    row is a tombstone).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO stack_users (id, email, display_name, first_seen_at, last_seen_at,
                                     updated_at)
            VALUES (%(id)s, %(email)s, %(name)s, now(), now(), now())
            ON CONFLICT (id) DO UPDATE
                SET email = CASE WHEN stack_users.last_event_at IS NULL
                                   OR stack_users.last_event_at < %(issued)s
                                 THEN EXCLUDED.email ELSE stack_users.email END,
                    display_name = CASE WHEN stack_users.last_event_at IS NULL
                                          OR stack_users.last_event_at < %(issued)s
                                        THEN EXCLUDED.display_name
                                        ELSE stack_users.display_name END,
                    last_seen_at = EXCLUDED.last_seen_at,
                    updated_at = EXCLUDED.updated_at
                WHERE stack_users.deleted_at IS NULL
            RETURNING id
            """,
            {"id": user_id, "email": email, "name": display_name, "issued": issued_at},
        )
        # With the WHERE on the update, a tombstone makes the statement return no row.
        return cursor.fetchone() is not None


@transaction.atomic
def webhook_message_claim(*, svix_id: str) -> bool:
    """Remember the Stack Auth webhook message as applied; False if it already was.

    Call it in the transaction that applies the message. A concurrent delivery of the same
    message waits on the first one's row: it finds it once that commits, or claims the
    message itself if that rolls back.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stack_auth_webhook_messages (svix_id) VALUES (%s)"
            " ON CONFLICT (svix_id) DO NOTHING",
            [svix_id],
        )
        return cursor.rowcount == 1


@transaction.atomic
def stack_user_sync(
    *,
    user_id: str,
    email: str | None,
    display_name: str | None,
    event_at: dt.datetime,
    event_id: str,
) -> bool:
    """Create or update the user from a webhook message created at `event_at` with `event_id`.

    Applied only if the message is newer than the one that last set the user, (`event_at`,
    `event_id`) compared as a pair, and the user is not deleted (a tombstone); the check and
    the write are one statement under the row's lock. Being described by a webhook is not
    being seen: `last_seen_at` changes only on insert. Return False when nothing was written.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO stack_users (id, email, display_name, first_seen_at, last_seen_at,
                                     updated_at, last_event_at, last_event_id)
            VALUES (%s, %s, %s, now(), now(), now(), %s, %s)
            ON CONFLICT (id) DO UPDATE
                SET email = EXCLUDED.email,
                    display_name = EXCLUDED.display_name,
                    updated_at = EXCLUDED.updated_at,
                    last_event_at = EXCLUDED.last_event_at,
                    last_event_id = EXCLUDED.last_event_id
                WHERE stack_users.deleted_at IS NULL
                  AND (stack_users.last_event_at IS NULL
                       OR (stack_users.last_event_at, stack_users.last_event_id)
                          < (EXCLUDED.last_event_at, EXCLUDED.last_event_id))
            RETURNING id
            """,
            [user_id, email, display_name, event_at, event_id],
        )
        return cursor.fetchone() is not None


@transaction.atomic
def stack_user_hold_live(user_id: str) -> bool:
    """Share-lock the user's mirror row until commit; False if the user is deleted (their
    tombstone). A user never seen here is live. Their deletion (which writes the row) then
    comes wholly before or after the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT deleted_at FROM stack_users WHERE id = %s FOR SHARE", [user_id])
        row = cursor.fetchone()
    return row is None or row[0] is None


def stack_user_delete(
    *,
    user_id: str,
    actor: Actor | None = None,
    event_at: dt.datetime | None = None,
    event_id: str | None = None,
) -> int:
    """Mark the user deleted, end their subscription (and cancel it at Stripe), delete all
    their webhook endpoints, templates and agents; count the agents.

    Safe to repeat: a second call finds nothing left to cancel or delete. The tombstone is
    written even for a user never seen here, so a late `user.updated` cannot create them.
    The cancellation and each deleted agent are recorded in the audit trail as done by
    `actor` (Stack Auth, unless said otherwise). Their team memberships end as of the
    deletion's message (`event_at`, `event_id`; now without one).
    """
    actor = actor or Actor.stack_auth()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO stack_users (id, first_seen_at, last_seen_at, deleted_at, updated_at)
            VALUES (%s, now(), now(), now(), now())
            ON CONFLICT (id) DO UPDATE
                SET deleted_at = COALESCE(stack_users.deleted_at, EXCLUDED.deleted_at),
                    updated_at = EXCLUDED.updated_at
            """,
            [user_id],
        )
    # The agents they created for a team are the team's (their owner is the team): they stay.
    agents_deleted = _account_close(owner_id=user_id, reason="stack_auth_user_deleted", actor=actor)
    memberships_end_for_user(user_id=user_id, event_at=event_at, event_id=event_id)
    # Tokens issued before the deletion stay valid for minutes; the mark lets the
    # authentication layer refuse them without a database read per request. A cache outage
    # must not fail the committed deletion: the tombstone still stops the next mirror touch.
    transaction.on_commit(
        lambda: cache.set(deleted_user_cache_key(user_id), True, timeout=DELETED_MARK_TIMEOUT),
        robust=True,
    )
    return agents_deleted


@transaction.atomic
def stack_team_delete(*, team_id: str, actor: Actor | None = None) -> int:
    """Mark the team deleted and end its memberships, end its subscription (and cancel it at
    Stripe), delete all its templates and agents; count the agents. As a user's deletion,
    safe to repeat.

    The team's row is locked first, then its templates, its subscription, its agents: the
    order in which creating a team's agent (or cloning a template into the team) takes them.
    """
    actor = actor or Actor.stack_auth()
    team_delete(team_id=team_id)
    return _account_close(owner_id=team_id, reason="stack_auth_team_deleted", actor=actor)


def _account_close(*, owner_id: str, reason: str, actor: Actor) -> int:
    """What a deleted account (a user or a team) loses, in the order creation and cloning
    lock them; return how many agents were deleted.

    Its webhook endpoints go first, so nothing more is sent to them (not even the agents'
    deletion); then its templates (clones other accounts made of them stay, unlinked),
    locked before the subscription as a clone takes them; its subscription ends, and is
    cancelled at Stripe by a task once this commits; last, its agents.
    """
    owner_notifications_delete(owner_id=owner_id)
    template_delete_all_for_owner(owner_id=owner_id, actor=actor)
    subscription = subscription_end_for_deleted_user(user_id=owner_id, reason=reason, actor=actor)
    if subscription.stripe_subscription_id:
        stripe_cancellation_send_on_commit(
            stripe_subscription_id=subscription.stripe_subscription_id
        )
    return agent_delete_all_for_owner(owner_id=owner_id, actor=actor)


# Svix retries a failed delivery for about 27 hours; a month also covers messages resent by
# hand from its dashboard. A message older than what is kept is still not applied over newer
# data (the order kept on stack_users refuses it); only its duplicate answer is lost.
WEBHOOK_MESSAGE_DAYS_KEPT = 30


def webhook_messages_prune(
    *, days: int = WEBHOOK_MESSAGE_DAYS_KEPT, batch_size: int = 10_000
) -> tuple[int, dt.datetime]:
    """Forget the ids of Stack Auth webhook messages received more than `days` ago; return
    (deleted, cutoff)."""
    cutoff = timezone.now() - dt.timedelta(days=days)
    deleted = delete_in_batches(
        table="stack_auth_webhook_messages", key=("svix_id",), older="received_at",
        cutoff=cutoff, batch_size=batch_size,
    )  # fmt: skip
    return deleted, cutoff
