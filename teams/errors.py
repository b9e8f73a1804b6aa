"""Refusals about teams, each with the code clients see."""

from rest_framework import status

from core.errors import ServiceError


class TeamNotFound(ServiceError):
    """Not a team the caller is a member of now: as unknown as one that does not exist."""

    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_detail = "No such team."


class TeamRoleTooLow(ServiceError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"
    default_detail = "Your role in the team does not allow this."
