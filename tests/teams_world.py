"""A team with a member of each role, a removed member and a member of another team, written
into the mirror as Stack Auth's webhooks would (through teams' services)."""

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

from teams.services import membership_set, permission_set, team_sync

TEAM = "team-0000-acme"
OTHER_TEAM = "team-0000-other"
_clock = itertools.count()
_start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# Each caller and the Stack Auth permissions they hold in TEAM.
MEMBERS: dict[str, list[str]] = {
    "viewer": ["a1zap:viewer"],
    "editor": [],  # a plain member: Stack Auth's default, the editor role
    "manager": ["a1zap:manager"],
    "admin": ["team_admin"],
}


def _stamp() -> dict[str, Any]:
    n = next(_clock)
    return {"event_at": _start + dt.timedelta(seconds=n), "event_id": f"msg_{n:012d}"}


def team_make(team_id: str, name: str = "Acme") -> None:
    team_sync(team_id=team_id, display_name=name, profile_image_url=None, **_stamp())


def member_add(team_id: str, user_id: str, permissions: Sequence[str] = ()) -> None:
    membership_set(team_id=team_id, user_id=user_id, is_member=True, **_stamp())
    for permission in permissions:
        permission_set(
            team_id=team_id, user_id=user_id, permission_id=permission, granted=True, **_stamp()
        )


def member_remove(team_id: str, user_id: str) -> None:
    membership_set(team_id=team_id, user_id=user_id, is_member=False, **_stamp())


def team_world() -> None:
    """TEAM with `viewer`, `editor`, `manager`, `admin` and `excluded` (an editor); `removed`
    was a member (an admin) and is no more; `outsider` is an admin of OTHER_TEAM only."""
    team_make(TEAM)
    team_make(OTHER_TEAM, "Other")
    for user_id, permissions in MEMBERS.items():
        member_add(TEAM, user_id, permissions)
    member_add(TEAM, "excluded")  # a plain member (editor), left off restricted agents
    member_add(TEAM, "removed", ["a1zap:admin"])
    member_remove(TEAM, "removed")
    member_add(OTHER_TEAM, "outsider", ["a1zap:admin"])


def many_members(team_id: str, count: int, *, admins: Sequence[str] = ()) -> None:
    """`count` plain members `m0000`... of the team, and `admins` (team_admin) beside them,
    written in bulk (a team too big to add one webhook at a time in a test)."""
    from teams.models import TeamMemberPermission, TeamMembership

    stamp = _stamp()
    user_ids = [f"m{n:04d}" for n in range(count)] + list(admins)
    TeamMembership.objects.bulk_create(
        TeamMembership(
            team_id=team_id, user_id=user_id, is_member=True,
            last_event_at=stamp["event_at"], last_event_id=stamp["event_id"],
        )
        for user_id in user_ids
    )  # fmt: skip
    TeamMemberPermission.objects.bulk_create(
        TeamMemberPermission(
            team_id=team_id, user_id=user_id, permission_id="team_admin", granted=True,
            last_event_at=stamp["event_at"], last_event_id=stamp["event_id"],
        )
        for user_id in admins
    )  # fmt: skip
