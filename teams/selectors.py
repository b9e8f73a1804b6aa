"""Reads of the team mirror: which teams a user belongs to, and their role in one."""

from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from teams.models import Team, TeamMemberPermission, TeamMembership
from teams.roles import (
    DEFAULT_ADMIN_PERMISSIONS,
    PERMISSION_ROLES,
    Role,
    role_from_permissions,
)


def team_ids_of_member(user_id: str) -> QuerySet[TeamMembership, Any]:
    """The ids of the teams the user is a member of now (not removed, team not deleted), as
    a subquery for other apps' filters; through the partial index on memberships."""
    return TeamMembership.objects.filter(
        user_id=user_id, is_member=True, team__deleted_at__isnull=True
    ).values("team_id")


def _holds(permission_ids: Any) -> Exists:
    return Exists(
        TeamMemberPermission.objects.filter(
            team_id=OuterRef("team_id"),
            user_id=OuterRef("user_id"),
            granted=True,
            permission_id__in=permission_ids,
        )
    )


def admin_team_ids_of_member(user_id: str) -> QuerySet[TeamMembership, Any]:
    """The teams in which the user is an admin now (`role_from_permissions` gives ADMIN), as
    a subquery: `tests/test_team_access.py` checks that both agree on every case."""
    admin_ids = [permission for permission, role in PERMISSION_ROLES.items() if role >= Role.ADMIN]
    return (
        TeamMembership.objects.filter(
            user_id=user_id, is_member=True, team__deleted_at__isnull=True
        )
        .filter(
            Q(_holds(admin_ids))
            | (~Q(_holds(list(PERMISSION_ROLES))) & Q(_holds(list(DEFAULT_ADMIN_PERMISSIONS))))
        )
        .values("team_id")
    )


# The same teams in SQL (the user's id as `%(user)s`), for plain-SQL reads in other apps.
MEMBER_TEAM_IDS_SQL = (
    "SELECT m.team_id FROM team_memberships m JOIN teams t ON t.id = m.team_id"
    " WHERE m.user_id = %(user)s AND m.is_member AND t.deleted_at IS NULL"
)


# admin_team_ids_of_member in SQL (the user's id as `%(user)s`).
_OURS = ", ".join(f"'{permission}'" for permission in PERMISSION_ROLES)
_OUR_ADMIN = ", ".join(f"'{p}'" for p, role in PERMISSION_ROLES.items() if role >= Role.ADMIN)
_DEFAULT_ADMIN = ", ".join(f"'{permission}'" for permission in sorted(DEFAULT_ADMIN_PERMISSIONS))


def _holds_sql(ids: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM team_member_permissions p WHERE p.team_id = m.team_id"  # noqa: S608
        f" AND p.user_id = m.user_id AND p.granted AND p.permission_id IN ({ids}))"
    )


# The membership `m` gives the admin role (`role_from_permissions`'s rule, in SQL).
_IS_ADMIN_SQL = (
    f"({_holds_sql(_OUR_ADMIN)} OR (NOT {_holds_sql(_OURS)} AND {_holds_sql(_DEFAULT_ADMIN)}))"
)

ADMIN_TEAM_IDS_SQL = (
    "SELECT m.team_id FROM team_memberships m JOIN teams t ON t.id = m.team_id"  # noqa: S608
    f" WHERE m.user_id = %(user)s AND m.is_member AND t.deleted_at IS NULL AND {_IS_ADMIN_SQL}"
)

# Every admin of a team now, through the memberships' (team_id, user_id) key.
TEAM_ADMIN_IDS_SQL = (
    "SELECT m.user_id FROM team_memberships m JOIN teams t ON t.id = m.team_id"  # noqa: S608
    f" WHERE m.team_id = %s AND m.is_member AND t.deleted_at IS NULL AND {_IS_ADMIN_SQL}"
    " ORDER BY m.user_id"
)


def team_admin_ids(team_id: str) -> list[str]:
    """Every current admin of the team (all of them, however many members it has), by id."""
    with connection.cursor() as cursor:
        cursor.execute(TEAM_ADMIN_IDS_SQL, [team_id])
        return [user_id for (user_id,) in cursor.fetchall()]


# One round trip: the membership (only if current, in a team not deleted) with the ids of
# the permissions the member holds in it.
MEMBER_PERMISSIONS_SQL = """
SELECT COALESCE(array_agg(p.permission_id) FILTER (WHERE p.granted), '{}')
FROM team_memberships m
JOIN teams t ON t.id = m.team_id AND t.deleted_at IS NULL
LEFT JOIN team_member_permissions p ON p.team_id = m.team_id AND p.user_id = m.user_id
WHERE m.team_id = %s AND m.user_id = %s AND m.is_member
GROUP BY m.id
"""


def member_role(*, team_id: str, user_id: str) -> Role | None:
    """The user's role in the team, or None when they are not a member of it now."""
    with connection.cursor() as cursor:
        cursor.execute(MEMBER_PERMISSIONS_SQL, [team_id, user_id])
        row = cursor.fetchone()
    return None if row is None else role_from_permissions(row[0])


def team_get(team_id: str) -> Team | None:
    return Team.objects.filter(pk=team_id).first()


def current_members(team_id: str, user_ids: Any) -> set[str]:
    """Which of these users are members of the team now (not removed, team not deleted)."""
    return set(
        TeamMembership.objects.filter(
            team_id=team_id, user_id__in=list(user_ids), is_member=True,
            team__deleted_at__isnull=True,
        ).values_list("user_id", flat=True)
    )  # fmt: skip


# Every current member of a team with the permissions they hold, for the console.
TEAM_MEMBERS_SQL = """
SELECT m.user_id, COALESCE(array_agg(p.permission_id ORDER BY p.permission_id)
                           FILTER (WHERE p.granted), '{}')
FROM team_memberships m
LEFT JOIN team_member_permissions p ON p.team_id = m.team_id AND p.user_id = m.user_id
WHERE m.team_id = %s AND m.is_member
GROUP BY m.user_id
ORDER BY m.user_id
LIMIT %s
"""


def team_members(team_id: str, *, limit: int = 500) -> list[dict[str, Any]]:
    """The team's current members (up to `limit`, by user id), each with the permission ids
    they hold and the role those give (`role_from_permissions`): a page for the console,
    which asks for one more than it shows to say when it is cut short. Not for anything
    that must reach every member (`team_admin_ids` for the admins)."""
    with connection.cursor() as cursor:
        cursor.execute(TEAM_MEMBERS_SQL, [team_id, limit])
        rows = cursor.fetchall()
    return [
        {"user_id": user_id, "permissions": list(held), "role": role_from_permissions(held)}
        for user_id, held in rows
    ]
