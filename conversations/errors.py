"""Refusals of the conversations domain, each with the code clients see."""

from rest_framework import status

from core.errors import ServiceError


class ConversationArchived(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "conversation_archived"
    default_detail = "This conversation is archived; it takes no more messages."


class ConversationGone(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_detail = "This conversation no longer exists."
