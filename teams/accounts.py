"""Which account a request is about: the caller's own, or a team's they belong to."""

from teams.errors import TeamNotFound, TeamRoleTooLow
from teams.roles import Role
from teams.selectors import member_role


def account_id_for(*, user_id: str, team_id: str | None, needs: Role) -> str:
    """`user_id`'s own account, or with `team_id` that team's (a team's account is keyed by
    its id, docs/teams.md): TeamNotFound (404) unless the user is a member of it now,
    TeamRoleTooLow (403) when their role is below `needs`."""
    if not team_id:
        return user_id
    role = member_role(team_id=team_id, user_id=user_id)
    if role is None:
        raise TeamNotFound()
    if role < needs:
        raise TeamRoleTooLow(f"This needs the {needs.name.lower()} role in the team.")
    return team_id
