"""Locks on teams' rows, taken for other apps' transactions.

A team's row is locked before its subscription and its agents (docs/teams.md): creating a
team's agent share-locks it, and every webhook message about the team, a removal or the
team's deletion included, locks it FOR UPDATE, so the two never run beside each other.
"""

from django.db import connection


def team_hold(team_id: str) -> bool:
    """Share-lock the team's row until commit; False if there is no such team or it is
    deleted."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT deleted_at FROM teams WHERE id = %s FOR SHARE", [team_id])
        row = cursor.fetchone()
    return row is not None and row[0] is None
