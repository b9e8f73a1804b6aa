"""Refusals of the usage domain."""

from rest_framework import status

from core.errors import ServiceError


class QuotaExceeded(ServiceError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "quota_exceeded"
    default_detail = "The plan's monthly message quota is used up; upgrade to send more."


class AgentGone(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_detail = "This agent no longer exists."


class PaymentOverdue(ServiceError):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    code = "payment_overdue"
    default_detail = (
        "The subscription is past due beyond its grace period; usage and messages are refused "
        "until the payment goes through."
    )
