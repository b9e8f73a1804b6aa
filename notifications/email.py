"""Email to an owner (a user, or a team's admins), at the addresses the user mirror holds.

The mirror (`stack_users`) belongs to `accounts`, which stands above every app that tells an
owner something; so `accounts` registers how to find an account's addresses when it starts
(`owner_email_resolver_set`), and the apps below ask through `owner_emails`.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.mail import send_mail

_resolver: Callable[[str], list[str]] | None = None


def owner_email_resolver_set(resolver: Callable[[str], list[str]]) -> None:
    """Say how to find an account's email addresses (none: no address, or deleted)."""
    global _resolver
    _resolver = resolver


def owner_emails(owner_id: str) -> list[str]:
    return _resolver(owner_id) if _resolver is not None else []


def owner_email_send(*, owner_id: str, subject: str, body: str) -> str | None:
    """Send a plain-text email to each address of the account (a team's admins each get
    their own); return the addresses, or None if there are none. A mail server that fails
    raises (the caller's job retries)."""
    addresses = owner_emails(owner_id)
    for address in addresses:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
    return ", ".join(addresses) or None
