"""The API's one answer to "which agent does this request name, and may the caller do this
with it?": `agents.selectors.agent_role_for` (docs/teams.md)."""

import uuid
from typing import Any

from rest_framework import exceptions

from agents.models import A1Agent
from agents.selectors import agent_role_for, agent_role_of
from core.principals import owner_of
from teams.roles import Role

ROLE_TOO_LOW = "Your role in the agent's team does not allow this."


def _require(role: Role | None, needs: Role) -> None:
    if role is None:
        raise exceptions.NotFound("No such agent.")
    if role < needs:
        raise exceptions.PermissionDenied(ROLE_TOO_LOW)


def visible_agent_id(
    user: Any, raw: object, *, field: str = "agent", needs: Role = Role.VIEWER
) -> uuid.UUID:
    """The agent named by `raw` (a UUID or its text) if the caller may see it and has at
    least the role `needs` on it.

    400 on `field` when `raw` is not a UUID; 404 when the agent is not one the caller may
    see; 403 when their role on it (in its team) is lower than `needs`.
    """
    try:
        agent_id = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
    except ValueError:
        raise exceptions.ValidationError({field: ["Must be a valid UUID."]}) from None
    _require(agent_role_for(user, agent_id), needs)
    return agent_id


def agent_role_check(user: Any, agent: A1Agent, *, needs: Role) -> None:
    """For an agent already found among those the caller may see: 403 unless their role on
    it is at least `needs`. Staff found it through their role's permissions, which the view
    has checked: their role here is not a team's."""
    owner = owner_of(user)
    if owner is not None:
        _require(agent_role_of(owner.id, agent), needs)
