"""Email to an owner, at the address the user mirror holds.

The mirror (`stack_users`) belongs to `accounts`, which stands above every app that tells an
owner something; so `accounts` registers how to find an owner's address when it starts
(`owner_email_resolver_set`), and the apps below ask through `owner_email`.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.mail import send_mail

_resolver: Callable[[str], str | None] | None = None


def owner_email_resolver_set(resolver: Callable[[str], str | None]) -> None:
    """Say how to find an owner's email address (None: the owner has none, or is deleted)."""
    global _resolver
    _resolver = resolver


def owner_email(owner_id: str) -> str | None:
    return _resolver(owner_id) if _resolver is not None else None


def owner_email_send(*, owner_id: str, subject: str, body: str) -> str | None:
    """Send a plain-text email to the owner; return the address, or None if they have none.
    A mail server that fails raises (the caller's job retries)."""
    address = owner_email(owner_id)
    if not address:
        return None
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
    return address
