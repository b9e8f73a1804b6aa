"""Who may call what: owners, staff, apps."""

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from a1zap.principals import app_of, is_staff, owner_of


class IsOwner(permissions.BasePermission):
    """A signed-in Stack Auth user."""

    message = "Sign in as an owner to do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return owner_of(request.user) is not None


class IsOwnerOrStaff(permissions.BasePermission):
    """An owner (who then sees only their own objects) or a staff member (who sees all)."""

    message = "Sign in as an owner or staff member to do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return owner_of(request.user) is not None or is_staff(request.user)


class IsApp(permissions.BasePermission):
    """An agent's app, authenticated by its key."""

    message = "Only an agent's app may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return app_of(request.user) is not None
