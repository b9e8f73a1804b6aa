"""Refusals of the agents domain, each with the code clients see."""

from rest_framework import status

from core.errors import ServiceError


class AgentLimitReached(ServiceError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "agent_limit_reached"
    default_detail = "Your plan's agent limit is reached."


class AgentNotActive(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "agent_not_active"
    default_detail = "This agent is paused or archived."


class InvalidStatusTransition(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "invalid_status_transition"
    default_detail = "The agent cannot make this status change."


class FieldInvalid(ServiceError):
    """One input field broke a rule only the service can check (e.g. a handle just taken)."""

    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors={field: [message]})


class NotATeamAgent(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "not_a_team_agent"
    default_detail = "Only a team's agent has access rules; your own agent is yours alone."


class AgentMoved(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "agent_moved"
    default_detail = "The agent changed owner meanwhile; read it again and retry."


class OwnerIsATeam(ServiceError):
    code = "owner_is_a_team"
    default_detail = (
        "This owner id is a team: a team's agent is created with `team` (by a member of it),"
        " so that its members reach it by their role."
    )
