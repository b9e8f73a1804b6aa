"""Who is making a request: an owner (Stack Auth user), an agent's app, or a staff member.

DRF puts one of these in `request.user`. Owners and apps are not Django users; staff are
Django users logged into the admin (`request.user.is_staff`).
"""

import uuid
from dataclasses import dataclass
from typing import Any

from core.staff_permissions import is_staff_member


@dataclass(frozen=True)
class Owner:
    """A Stack Auth user, identified by the token's `sub`."""

    id: str
    email: str | None = None
    display_name: str | None = None

    is_authenticated = True
    is_anonymous = False
    is_staff = False


@dataclass(frozen=True)
class AppPrincipal:
    """An agent's app, authenticated by its `a1app_` key; it acts for its own agent only."""

    app_id: uuid.UUID
    agent_id: uuid.UUID
    owner_id: str

    is_authenticated = True
    is_anonymous = False
    is_staff = False


def owner_of(user: Any) -> Owner | None:
    """Return the owner making the request, or None for apps, staff and anonymous callers."""
    return user if isinstance(user, Owner) else None


def app_of(user: Any) -> AppPrincipal | None:
    """Return the app making the request, or None."""
    return user if isinstance(user, AppPrincipal) else None


def is_staff(user: Any) -> bool:
    """Tell whether the caller is staff with a role (see `core.staff_permissions`).

    Being `is_staff` only lets a person log into the admin; what a staff member may see or
    do, in the admin and through the API, is the permission `staff_may` names for it.
    """
    return is_staff_member(user)
