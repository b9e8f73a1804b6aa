"""Reads of the team mirror: which teams a user belongs to, and their role in one."""

from typing import Any

from django.db import connection
from django.db.models import QuerySet

from teams.models import Team, TeamMembership
from teams.roles import Role, role_from_permissions


def team_ids_of_member(user_id: str) -> QuerySet[TeamMembership, Any]:
    """The ids of the teams the user is a member of now (not removed, team not deleted), as
    a subquery for other apps' filters; through the partial index on memberships."""
    return TeamMembership.objects.filter(
        user_id=user_id, is_member=True, team__deleted_at__isnull=True
    ).values("team_id")


# The same teams in SQL (one parameter: the user's id), for plain-SQL reads in other apps.
MEMBER_TEAM_IDS_SQL = (
    "SELECT m.team_id FROM team_memberships m JOIN teams t ON t.id = m.team_id"
    " WHERE m.user_id = %s AND m.is_member AND t.deleted_at IS NULL"
)


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
