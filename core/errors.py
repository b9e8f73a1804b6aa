"""One error shape for the whole API: `{"code", "detail"}`, plus `errors` for field failures.

Services raise `ServiceError` subclasses (their own code, status and extra fields); DRF and
Django exceptions are mapped to the same shape here. Django-level 404/500 for API paths
answer JSON too, so a client never has to parse an HTML error page.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

logger = logging.getLogger(__name__)

JSON_PATH_PREFIXES = ("/api/", "/stripe/", "/stack-auth/", "/healthz", "/readyz")


class ServiceError(Exception):
    """A rule of the domain refused the request; carries what the client needs to act."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code = "invalid_request"
    default_detail = "The request was refused."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)

    def as_body(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}


class ServiceUnavailable(exceptions.APIException):
    """A dependency (database, cache, Stripe, Stack Auth) is not answering."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "The service is temporarily unavailable; try again shortly."


# A database or cache that does not answer: 503 service_unavailable, never a 500.
DEPENDENCY_OUTAGES = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


class DependencyOutageMiddleware:
    """Answer 503 with the error shape when the database or cache fails outside DRF views
    (webhooks, health checks, the admin)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DEPENDENCY_OUTAGES):
            return None
        logger.warning("A dependency is unavailable: %s", exception)
        return JsonResponse(
            {"code": "service_unavailable", "detail": ServiceUnavailable.default_detail},
            status=503,
        )


# DRF exception classes whose code we name ourselves rather than use DRF's default.
CODES_BY_EXCEPTION: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "malformed_request",
    exceptions.Throttled: "throttled",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render every error raised in a DRF view as `{"code", "detail", ...}`."""
    if isinstance(exc, ServiceError):
        return Response(exc.as_body(), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, DEPENDENCY_OUTAGES):
        logger.warning("A dependency is unavailable: %s", exc)
        exc = ServiceUnavailable()
    elif isinstance(exc, DataError):
        # PostgreSQL refuses some values a client can send (NUL bytes, out-of-range numbers).
        logger.info("Refused input the database cannot store: %s", exc)
        exc = exceptions.ValidationError({"non_field_errors": ["A value cannot be stored."]})

    # Imported here: rest_framework.views loads the authentication classes, which import
    # services that raise ServiceError from this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)

    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "code": "validation_error",
            "detail": _first_message(errors) or "Invalid input.",
            "errors": errors,
        }
        return response

    code = _code_of(exc)
    body: dict[str, Any] = {"code": code, "detail": str(exc.detail)}
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        body["retry_after"] = int(wait) + 1
    response.data = body
    return response


def _code_of(exc: exceptions.APIException) -> str:
    for exception_class, code in CODES_BY_EXCEPTION.items():
        if isinstance(exc, exception_class):
            return code
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _first_message(errors: Any) -> str | None:
    """Return the first human message of a nested error structure, prefixed by its field."""
    if isinstance(errors, dict):
        for field, value in errors.items():
            message = _first_message(value)
            if message:
                return message if field == "non_field_errors" else f"{field}: {message}"
    elif isinstance(errors, list):
        for value in errors:
            message = _first_message(value)
            if message:
                return message
    elif errors:
        return str(errors)
    return None


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PATH_PREFIXES)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Answer unknown API paths with the JSON error shape, others with Django's page."""
    if _wants_json(request):
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Answer unexpected failures on API paths with the JSON error shape."""
    if _wants_json(request):
        return JsonResponse(
            {"code": "server_error", "detail": "Something went wrong on our side."}, status=500
        )
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Answer requests Django itself refuses (bad host, oversized body) in the JSON shape."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            {"code": "payload_too_large", "detail": "The request body is too large."}, status=413
        )
    if _wants_json(request):
        return JsonResponse({"code": "bad_request", "detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)
