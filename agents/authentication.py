"""Authenticate an agent's app by its `Authorization: Bearer a1app_…` key.

Every request looks the key's hash up in PostgreSQL (one indexed read, ~0.1 ms): nothing is
cached, so a rotated key or a suspended app is refused by every host from the moment the
change commits. (A cache would need a shared invalidation read per request, which costs
what the lookup does.)
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from agents.app_keys import app_key_hash, looks_like_app_key
from agents.models import AppStatus
from agents.selectors import key_holder
from core.principals import AppPrincipal


class AppKeyAuthentication(authentication.BaseAuthentication):
    """Accept a current app key; the app then acts for its own agent only."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AppPrincipal, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not looks_like_app_key(credentials):
            return None
        holder = key_holder(app_key_hash(credentials))
        if holder is None:
            raise exceptions.AuthenticationFailed("Invalid app key.", code="not_authenticated")
        if holder.app_status != AppStatus.ACTIVE:
            raise exceptions.AuthenticationFailed(
                "This app is suspended.", code="not_authenticated"
            )
        return holder.principal, None

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class AppKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "agents.authentication.AppKeyAuthentication"
    name = "AppKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An agent's app key, `a1app_…`, shown once when the agent is created "
            "or its key rotated.",
        }
