"""Who makes a change: passed explicitly, as `actor=`, from the entry point to the service.

The API views, the admin and the webhooks each know who is acting; the services record it.
A service called without an actor (operator commands, the shell, tests) records `system`.
"""

from dataclasses import dataclass
from typing import Any

from audit.models import ActorKind
from core.principals import app_of, owner_of


@dataclass(frozen=True)
class Actor:
    """The person or system behind a change."""

    kind: str
    id: str = ""
    name: str = ""

    @property
    def label(self) -> str:
        """`staff:ann`, `owner:user_1`, `stripe:evt_…`, `system`: for ledgers and messages."""
        who = self.name or self.id
        return f"{self.kind}:{who}" if who else self.kind

    @classmethod
    def owner(cls, user_id: str) -> "Actor":
        return cls(kind=ActorKind.OWNER, id=user_id)

    @classmethod
    def staff(cls, user: Any) -> "Actor":
        return cls(kind=ActorKind.STAFF, id=str(user.pk), name=user.get_username())

    @classmethod
    def stripe(cls, event_id: str = "") -> "Actor":
        return cls(kind=ActorKind.STRIPE, id=event_id)

    @classmethod
    def stack_auth(cls, message_id: str = "") -> "Actor":
        return cls(kind=ActorKind.STACK_AUTH, id=message_id)


SYSTEM = Actor(kind=ActorKind.SYSTEM)


def actor_for(user: Any) -> Actor:
    """The actor behind an API request: its owner, its app, or the staff member signed in."""
    owner = owner_of(user)
    if owner is not None:
        return Actor.owner(owner.id)
    app = app_of(user)
    if app is not None:
        return Actor(kind=ActorKind.APP, id=str(app.app_id))
    if getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False):
        return Actor.staff(user)
    return SYSTEM


def actor_coerce(actor: "Actor | str") -> Actor:
    """Accept the older `"staff:ann"`-style strings some callers pass as the actor."""
    if isinstance(actor, Actor):
        return actor
    kind, _, who = actor.partition(":")
    if who and kind == ActorKind.STAFF:
        return Actor(kind=kind, name=who)
    if who and kind in ActorKind.values:
        return Actor(kind=kind, id=who)
    return Actor(kind=ActorKind.SYSTEM, name=actor)
