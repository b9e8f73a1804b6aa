"""Writes to the team mirror, from Stack Auth's webhook messages.

Each write is applied only if its message is newer than the one that last set the row,
(`event_at`, `event_id`) compared as a pair, exactly as for the user mirror. All the writes
about one team take its row's lock first (creating the row bare if a membership or a
permission arrives before the team), so the messages of one team apply one at a time, and a
deleted team (a tombstone) refuses every later message.
"""

import datetime as dt
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

NEWER = "(t.last_event_at IS NULL OR (t.last_event_at, t.last_event_id) < (%s, %s))"


def _team_lock(team_id: str) -> bool:
    """Create the team's row if missing and lock it; False if the team is deleted."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO teams (id) VALUES (%s) ON CONFLICT (id) DO NOTHING", [team_id])
        cursor.execute("SELECT deleted_at FROM teams WHERE id = %s FOR UPDATE", [team_id])
        (deleted_at,) = cursor.fetchone()
    return deleted_at is None


@transaction.atomic
def team_sync(
    *,
    team_id: str,
    display_name: str | None,
    profile_image_url: str | None,
    event_at: dt.datetime,
    event_id: str,
) -> bool:
    """Create or update the team from a team.created/updated message; False if not applied
    (the team is deleted, or a newer message set it)."""
    if not _team_lock(team_id):
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE teams t SET display_name = %s, profile_image_url = %s, updated_at = now(),
                               last_event_at = %s, last_event_id = %s
            WHERE t.id = %s AND {NEWER}
            """,  # noqa: S608 - a constant
            [display_name, profile_image_url, event_at, event_id, team_id, event_at, event_id],
        )
        return cursor.rowcount == 1


@transaction.atomic
def team_delete(*, team_id: str) -> None:
    """Mark the team deleted (for good) and end every membership of it.

    Safe to repeat. The tombstone is written even for a team never seen here, so that a
    late message cannot create it.
    """
    _team_lock(team_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE teams SET deleted_at = COALESCE(deleted_at, now()), updated_at = now()"
            " WHERE id = %s",
            [team_id],
        )
        cursor.execute(
            "UPDATE team_memberships SET is_member = false, updated_at = now()"
            " WHERE team_id = %s AND is_member",
            [team_id],
        )


# A removal's message, recorded on the membership unless a later removal is recorded already.
RECORD_REMOVAL = """
UPDATE team_memberships t SET removed_event_at = %(at)s, removed_event_id = %(id)s
WHERE {scope}
  AND (t.removed_event_at IS NULL OR (t.removed_event_at, t.removed_event_id) < (%(at)s, %(id)s))
"""
# A removal revokes the member's permissions set before it (as of its message).
REVOKE_BEFORE_REMOVAL = """
UPDATE team_member_permissions t SET granted = false, updated_at = now(),
                                     last_event_at = %(at)s, last_event_id = %(id)s
WHERE {scope}
  AND (t.last_event_at IS NULL OR (t.last_event_at, t.last_event_id) < (%(at)s, %(id)s))
"""
ONE_MEMBERSHIP = "t.team_id = %(team)s AND t.user_id = %(user)s"
EVERY_MEMBERSHIP = "t.user_id = %(user)s"


def _removal_record(cursor: Any, scope: str, removal: dict[str, Any]) -> None:
    """Record a removal on the memberships in `scope` and revoke their permissions set
    before it."""
    cursor.execute(RECORD_REMOVAL.format(scope=scope), removal)
    cursor.execute(REVOKE_BEFORE_REMOVAL.format(scope=scope), removal)


@transaction.atomic
def membership_set(
    *, team_id: str, user_id: str, is_member: bool, event_at: dt.datetime, event_id: str
) -> bool:
    """Apply a team_membership.created (`is_member`) or .deleted message; False if not
    applied.

    A removal is recorded on the membership (`removed_event_*`) and revokes the member's
    permissions in the team as of its message even when a newer message decided the
    membership already: a permission granted before the removal and delivered after it,
    or after the member is added back, belongs to the earlier membership and stays revoked.
    """
    if not _team_lock(team_id):
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO team_memberships AS t (team_id, user_id, is_member, last_event_at,
                                               last_event_id)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (team_id, user_id) DO UPDATE
                SET is_member = EXCLUDED.is_member, updated_at = now(),
                    last_event_at = EXCLUDED.last_event_at, last_event_id = EXCLUDED.last_event_id
                WHERE {NEWER}
            RETURNING t.id
            """,  # noqa: S608 - a constant
            [team_id, user_id, is_member, event_at, event_id, event_at, event_id],
        )
        applied = cursor.fetchone() is not None
        if not is_member:
            removal: dict[str, Any] = {
                "team": team_id, "user": user_id, "at": event_at, "id": event_id,
            }  # fmt: skip
            _removal_record(cursor, ONE_MEMBERSHIP, removal)
    return applied


@transaction.atomic
def permission_set(
    *,
    team_id: str,
    user_id: str,
    permission_id: str,
    granted: bool,
    event_at: dt.datetime,
    event_id: str,
) -> bool:
    """Apply a team_permission.created (`granted`) or .deleted message; False if not applied
    (the team is deleted, a newer message set the permission, or the member was removed
    after it: the message belongs to an earlier membership, whether or not they are a member
    again now)."""
    if not _team_lock(team_id):
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT 1 FROM team_memberships t
            WHERE t.team_id = %s AND t.user_id = %s AND t.removed_event_at IS NOT NULL
              AND (t.removed_event_at, t.removed_event_id) >= (%s, %s)
            """,
            [team_id, user_id, event_at, event_id],
        )
        if cursor.fetchone() is not None:
            return False
        cursor.execute(
            f"""
            INSERT INTO team_member_permissions AS t (team_id, user_id, permission_id, granted,
                                                      last_event_at, last_event_id)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (team_id, user_id, permission_id) DO UPDATE
                SET granted = EXCLUDED.granted, updated_at = now(),
                    last_event_at = EXCLUDED.last_event_at, last_event_id = EXCLUDED.last_event_id
                WHERE {NEWER}
            RETURNING t.id
            """,  # noqa: S608 - a constant
            [team_id, user_id, permission_id, granted, event_at, event_id, event_at, event_id],
        )
        return cursor.fetchone() is not None


# The user's deletion ends a membership whatever message set it last: it is stamped with
# the deletion's message only where that is newer (a KSUID id, so a late message is older).
END_MEMBERSHIPS = """
UPDATE team_memberships t SET
    is_member = false, updated_at = now(),
    last_event_at = CASE WHEN (t.last_event_at, t.last_event_id) < (%(at)s, %(id)s)
                         THEN %(at)s ELSE t.last_event_at END,
    last_event_id = CASE WHEN (t.last_event_at, t.last_event_id) < (%(at)s, %(id)s)
                         THEN %(id)s ELSE t.last_event_id END
WHERE t.user_id = %(user)s AND t.is_member
"""
# Without a message (a deletion not from a webhook), the deletion's stamp: now, and an id
# that sorts after a message id ("msg_...") of the same instant.
DELETION_EVENT_ID = "user.deleted"


@transaction.atomic
def memberships_end_for_user(
    *, user_id: str, event_at: dt.datetime | None = None, event_id: str | None = None
) -> int:
    """End every membership of a deleted user as of the deletion's message (`event_at`,
    `event_id`; now when not given) and revoke their permissions; return how many ended.

    The teams' rows are locked first, in id order, as every write about a team locks its
    row: a membership message of one of them applies wholly before or after this. The
    removal is recorded like a team_membership.deleted's, so an older permission message
    stays refused; newer ones are refused by the user's tombstone (`accounts.webhooks`).
    """
    removal: dict[str, Any] = {
        "user": user_id,
        "at": event_at or timezone.now(),
        "id": event_id or DELETION_EVENT_ID,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM teams WHERE id IN"
            " (SELECT team_id FROM team_memberships WHERE user_id = %s) ORDER BY id FOR UPDATE",
            [user_id],
        )
        cursor.execute(END_MEMBERSHIPS, removal)
        ended = cursor.rowcount
        _removal_record(cursor, EVERY_MEMBERSHIP, removal)
        return ended
