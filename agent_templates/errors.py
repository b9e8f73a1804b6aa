"""Refusals of the templates domain, each with the code clients see."""

from rest_framework import status

from core.errors import ServiceError


class TemplateNotFound(ServiceError):
    """Unknown, or not one the caller may read: the two are told apart by nobody."""

    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_detail = "No such template."


class TemplateUpToDate(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "template_up_to_date"
    default_detail = "The agent already has the template's latest version."


class ModerationRefused(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "invalid_moderation"
    default_detail = "This decision does not apply to the template as it is."
