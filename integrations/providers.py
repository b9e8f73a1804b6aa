"""What each provider's configuration holds, and how it is stored and shown.

Every provider declares its keys: public keys are stored as sent, secret keys as Fernet
ciphertext. The stored document is always

    {"public": {"phone_number_id": "1234567"}, "secrets": {"access_token": "gAAAA…"}}

and a secret leaves the server only masked: `"••••"` plus its last four characters when it
is at least 12 characters long, `"••••"` alone otherwise. A webhook `url` is a secret (an
incoming-webhook URL is a bearer credential); it and an email `smtp_host` must pass the
outbound guard (`core.outbound`): no loopback, private, link-local or metadata targets.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator, URLValidator

from core import outbound
from core.api_input import text_problem
from core.encryption import DecryptionError, decrypt, encrypt
from core.outbound import OutboundRefused, OutboundUnresolved
from integrations.models import Provider

MASK = "••••"
# Below this length even the last four characters would give away too much of a secret.
MASK_HINT_MIN_LENGTH = 12
MAX_TEXT_LENGTH = 2048
DIGITS = re.compile(r"^[0-9]{1,32}$")
TELEGRAM_TOKEN = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,100}$")
HOSTNAME_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){HOSTNAME_LABEL}(\.{HOSTNAME_LABEL})*$")


class ConfigInvalid(Exception):
    """Some keys of a configuration are missing, unknown or malformed; `errors` names them."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(errors)


def _digits(value: str) -> str | None:
    return None if DIGITS.fullmatch(value) else "Must be a numeric id."


def _slack_bot_token(value: str) -> str | None:
    return None if value.startswith("xoxb-") else "Must be a bot token starting with xoxb-."


def _telegram_token(value: str) -> str | None:
    return (
        None if TELEGRAM_TOKEN.fullmatch(value) else "Must look like 123456:ABC-DEF… (BotFather)."
    )


def _email(value: str) -> str | None:
    try:
        EmailValidator()(value)
    except DjangoValidationError:
        return "Must be an email address."
    return None


def _reachable(vet: Callable[[], object]) -> str | None:
    """Refuse a target the outbound guard refuses. A name that does not resolve yet is kept:
    delivery vets it again (and connects only to the address it vetted)."""
    try:
        vet()
    except OutboundUnresolved:
        return None
    except OutboundRefused as refused:
        return str(refused)
    return None


def _smtp_host(value: str) -> str | None:
    if not HOSTNAME.fullmatch(value):
        return "Must be a host name."
    return _reachable(lambda: outbound.vet_host(value, 0))


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "Must be between 1 and 65535."


def _webhook_url(value: str) -> str | None:
    insecure = settings.WEBHOOK_ALLOW_INSECURE_TARGETS
    try:
        URLValidator(schemes=["https", "http"] if insecure else ["https"])(value)
    except DjangoValidationError:
        return "Must be an https:// URL."
    if urlsplit(value).username is not None:
        return "Must not contain credentials; use signing_secret instead."
    return _reachable(lambda: outbound.vet_url(value))


@dataclass(frozen=True)
class ConfigKey:
    """One key of a provider's configuration."""

    name: str
    secret: bool = False
    required: bool = True
    integer: bool = False
    check: Callable[[Any], str | None] | None = None


PROVIDER_KEYS: Mapping[str, tuple[ConfigKey, ...]] = {
    Provider.WHATSAPP: (
        ConfigKey("phone_number_id", check=_digits),
        ConfigKey("access_token", secret=True),
        ConfigKey("verify_token", secret=True),
    ),
    Provider.SLACK: (
        ConfigKey("bot_token", secret=True, check=_slack_bot_token),
        ConfigKey("signing_secret", secret=True),
        ConfigKey("channel_id", required=False),
    ),
    Provider.DISCORD: (
        ConfigKey("bot_token", secret=True),
        ConfigKey("application_id", check=_digits),
        ConfigKey("guild_id", required=False, check=_digits),
    ),
    Provider.TELEGRAM: (ConfigKey("bot_token", secret=True, check=_telegram_token),),
    Provider.EMAIL: (
        ConfigKey("address", check=_email),
        ConfigKey("smtp_host", check=_smtp_host),
        ConfigKey("smtp_port", integer=True, check=_port),
        ConfigKey("smtp_username"),
        ConfigKey("smtp_password", secret=True),
    ),
    Provider.WEBHOOK: (
        # An incoming-webhook URL (Slack, Discord) is a bearer credential: a secret.
        ConfigKey("url", secret=True, check=_webhook_url),
        ConfigKey("signing_secret", secret=True, required=False),
    ),
}


def _section(config: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """One part ("public" or "secrets") of a stored document, tolerating a malformed one."""
    part = config.get(name) if isinstance(config, Mapping) else None
    return dict(part) if isinstance(part, Mapping) else {}


def _value_problem(key: ConfigKey, value: Any) -> str | None:
    if key.integer:
        # bool is an int in Python, not in JSON.
        if not isinstance(value, int) or isinstance(value, bool):
            return "Must be an integer."
    else:
        if not isinstance(value, str):
            return "Must be a string."
        if not value.strip():
            return "Must not be blank."
        if len(value) > MAX_TEXT_LENGTH:
            return f"Must be at most {MAX_TEXT_LENGTH} characters."
        if problem := text_problem(value):
            return problem
    return key.check(value) if key.check else None


def config_build(
    *, provider: str, changes: Mapping[str, Any], stored: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the document to store: `stored` (the current one, if any) with `changes` merged.

    A key sent replaces the stored value; a key left out keeps it (so secrets need not be
    sent again); `null` removes an optional key. Raise ConfigInvalid naming every bad key.
    """
    keys = PROVIDER_KEYS[provider]
    known = {key.name for key in keys}
    errors: dict[str, list[str]] = {
        name: ["Not a setting of this provider."] for name in sorted(set(changes) - known)
    }
    public = _section(stored, "public")
    secrets = _section(stored, "secrets")
    for key in keys:
        if key.secret:
            # A key that became secret (webhook `url`) may still be stored in clear from
            # before migration 0004: move it, encrypted, whatever else changes.
            legacy = public.pop(key.name, None)
            if isinstance(legacy, str) and key.name not in secrets:
                secrets[key.name] = encrypt(legacy)
        if key.name not in changes:
            if key.required and key.name not in (secrets if key.secret else public):
                errors[key.name] = ["This setting is required."]
            continue
        value = changes[key.name]
        target = secrets if key.secret else public
        if value is None:
            if key.required:
                errors[key.name] = ["This setting is required; it cannot be removed."]
            target.pop(key.name, None)
            continue
        problem = _value_problem(key, value)
        if problem:
            errors[key.name] = [problem]
            continue
        target[key.name] = encrypt(value) if key.secret else value
    if errors:
        raise ConfigInvalid(errors)
    return {"public": public, "secrets": secrets}


def mask(secret: str) -> str:
    """Show a secret as `••••` plus its last four characters, or `••••` alone if it is short."""
    return MASK + secret[-4:] if len(secret) >= MASK_HINT_MIN_LENGTH else MASK


def config_masked(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the configuration as clients and staff see it: public keys, masked secrets."""
    shown = _section(config, "public")
    for name, ciphertext in _section(config, "secrets").items():
        try:
            shown[name] = mask(decrypt(ciphertext))
        except (DecryptionError, AttributeError, TypeError):
            # A value no configured key opens: still masked, never shown.
            shown[name] = MASK
    return shown
