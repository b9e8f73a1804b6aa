"""Who is making a request: an owner (Stack Auth user), an agent's app, or a staff member.

DRF puts one of these in `request.user`. Owners and apps are not Django users; staff are
Django users logged into the admin (`request.user.is_staff`).
"""

import uuid
from dataclasses import dataclass
from typing import Any


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


STAFF_ROLES = ("support", "admin")


def staff_role(user: Any) -> str | None:
    """The caller's staff role: `admin` (superusers too), `support`, or None.

    Being `is_staff` only lets a person log into the admin; seeing customers' data through
    the API also takes membership of the `support` or `admin` group. Looked up once per
    request and kept on the user object.
    """
    if not (getattr(user, "is_staff", False) and getattr(user, "is_active", False)):
        return None
    if getattr(user, "is_superuser", False):
        return "admin"
    if not hasattr(user, "_a1zap_staff_role"):
        groups = set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
        user._a1zap_staff_role = next(
            (role for role in ("admin", "support") if role in groups), None
        )
    role: str | None = user._a1zap_staff_role
    return role


def is_staff(user: Any) -> bool:
    """Tell whether the caller is staff with a role that may see customers' data."""
    return staff_role(user) is not None
