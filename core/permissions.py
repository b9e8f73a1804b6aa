"""Who may call what: owners, apps, staff.

Owners and apps are scoped by the views' querysets (their own agents, their own agent).
Staff are checked against `core.staff_permissions`: every view names its `staff_resource`,
and the operation is the view's action (`list`/`retrieve` read, `partial_update` changes,
`destroy` deletes, a custom action is its own name) or, for a plain view, its method.
"""

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from core.principals import app_of, owner_of
from core.staff_permissions import staff_may

ACTION_OPERATIONS = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}
METHOD_OPERATIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def staff_operation(request: Request, view: Any) -> str:
    """The operation a request asks of the view, as the staff permission map names it."""
    action = getattr(view, "action", None)
    if action:
        return ACTION_OPERATIONS.get(action, action)
    return METHOD_OPERATIONS.get(request.method or "", "")


def staff_may_call(request: Request, view: Any) -> bool:
    """Tell whether a staff member may do what the request asks (a view naming no resource
    lets no staff member in)."""
    resource = getattr(view, "staff_resource", None)
    return resource is not None and staff_may(
        request.user, resource, staff_operation(request, view)
    )


class IsOwner(permissions.BasePermission):
    """A signed-in Stack Auth user, acting on their own account or agents: no staff member
    (who has neither, and may not act as a customer)."""

    message = "Sign in as an owner to do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return owner_of(request.user) is not None


class IsOwnerOrStaff(permissions.BasePermission):
    """An owner (who then sees only their own objects) or a staff member whose role gives
    them the permission for this action (who sees all)."""

    message = "Sign in as an owner, or as staff whose role allows this, to do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return owner_of(request.user) is not None or staff_may_call(request, view)


class IsOwnerAppOrStaff(permissions.BasePermission):
    """An owner or an app (each scoped to its own by the view), or a staff member whose role
    gives them the permission for this action."""

    message = "Sign in as an owner, an app, or staff whose role allows this, to do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return (
            owner_of(user) is not None or app_of(user) is not None or staff_may_call(request, view)
        )


class IsApp(permissions.BasePermission):
    """An agent's app, authenticated by its key (no staff member may act as an app)."""

    message = "Only an agent's app may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return app_of(request.user) is not None
