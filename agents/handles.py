"""Rules for @handles: 3 to 30 of [A-Za-z0-9_], unique regardless of case, not reserved."""

import re

from agents.models import HANDLE_MAX_LENGTH, HANDLE_MIN_LENGTH

HANDLE_RE = re.compile(r"^[A-Za-z0-9_]+$")

# Words that name our own pages, staff roles or the brand; compared without regard to case.
RESERVED_HANDLES = frozenset(
    {
        "a1zap", "about", "account", "accounts", "admin", "administrator", "agent", "agents",
        "api", "app", "apps", "auth", "billing", "blog", "dashboard", "docs", "help", "healthz",
        "home", "login", "logout", "mail", "me", "moderator", "new", "null", "official",
        "owner", "pricing", "privacy", "public", "readyz", "register", "root", "security",
        "settings", "signin", "signup", "staff", "static", "status", "stripe", "support",
        "system", "team", "terms", "undefined", "webhook", "webhooks", "www",
    }
)  # fmt: skip


def handle_problem(handle: str) -> str | None:
    """Return why a handle cannot be used (format or reserved), or None if it may be."""
    if not HANDLE_MIN_LENGTH <= len(handle) <= HANDLE_MAX_LENGTH:
        return f"Handles are {HANDLE_MIN_LENGTH} to {HANDLE_MAX_LENGTH} characters long."
    if not HANDLE_RE.match(handle):
        return "Handles may contain only letters, digits and underscores."
    if handle.casefold() in RESERVED_HANDLES:
        return "This handle is reserved."
    return None
