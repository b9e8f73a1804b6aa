"""Authenticate an agent's app by its `Authorization: Bearer a1app_…` key."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from agents.app_keys import app_key_hash, looks_like_app_key
from agents.models import App, AppStatus
from core.principals import AppPrincipal


class AppKeyAuthentication(authentication.BaseAuthentication):
    """Accept a current app key; the app then acts for its own agent only."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AppPrincipal, App] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not looks_like_app_key(credentials):
            return None
        app = (
            App.objects.filter(key_hash=app_key_hash(credentials), agent__isnull=False)
            .select_related("agent")
            .only("id", "status", "agent__id", "agent__owner_id", "agent__status")
            .first()
        )
        if app is None or app.agent is None:
            raise exceptions.AuthenticationFailed("Invalid app key.", code="not_authenticated")
        if app.status != AppStatus.ACTIVE:
            raise exceptions.AuthenticationFailed(
                "This app is suspended.", code="not_authenticated"
            )
        principal = AppPrincipal(app_id=app.id, agent_id=app.agent.id, owner_id=app.agent.owner_id)
        return principal, app

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
