"""What a member may do in a team, from the Stack Auth team permissions they hold.

Our permission ids (create them in Stack Auth's dashboard, as team permissions) each name a
role; a higher role includes everything below it. A member who holds none of them gets the
default from Stack Auth's built-in permissions (see docs/teams.md and the README).
"""

import enum
from collections.abc import Iterable


class Role(enum.IntEnum):
    """A caller's standing on an agent, lowest first; each includes those below it."""

    VIEWER = 1  # read the agents and everything under them
    EDITOR = 2  # create agents, change them, pause, resume, archive
    MANAGER = 3  # delete agents, rotate app keys, manage integrations
    ADMIN = 4  # the team's billing and members' access
    OWNER = 5  # the user who owns a personal agent: everything


PERMISSION_ROLES = {
    "a1zap:viewer": Role.VIEWER,
    "a1zap:editor": Role.EDITOR,
    "a1zap:manager": Role.MANAGER,
    "a1zap:admin": Role.ADMIN,
}
# Stack Auth's built-in ones that make a member a team admin when none of ours is set.
DEFAULT_ADMIN_PERMISSIONS = frozenset({"team_admin", "$update_team", "$delete_team"})
# Any other member, with none of our ids.
DEFAULT_MEMBER_ROLE = Role.EDITOR


def role_from_permissions(permission_ids: Iterable[str]) -> Role:
    """The role of a member holding these team permissions."""
    held = set(permission_ids)
    ours = [PERMISSION_ROLES[permission] for permission in held if permission in PERMISSION_ROLES]
    if ours:
        return max(ours)
    if held & DEFAULT_ADMIN_PERMISSIONS:
        return Role.ADMIN
    return DEFAULT_MEMBER_ROLE
