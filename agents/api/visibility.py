"""The API's one answer to "which agent does this request name?"."""

import uuid
from typing import Any

from rest_framework import exceptions

from agents.selectors import agent_is_visible_to


def visible_agent_id(user: Any, raw: object, *, field: str = "agent") -> uuid.UUID:
    """The agent named by `raw` (a UUID or its text) if the caller may see it.

    400 on `field` when `raw` is not a UUID; 404 when the agent is not one the caller may see.
    """
    try:
        agent_id = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
    except ValueError:
        raise exceptions.ValidationError({field: ["Must be a valid UUID."]}) from None
    if not agent_is_visible_to(user, agent_id):
        raise exceptions.NotFound("No such agent.")
    return agent_id
