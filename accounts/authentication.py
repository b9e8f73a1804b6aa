"""Authenticate owners by their Stack Auth access token, verified locally against the JWKS.

The token comes in `x-stack-access-token` (what Stack Auth's clients send) or as
`Authorization: Bearer <jwt>`. It must be an ES256 JWT signed by a key of the project's
JWKS (chosen by `kid`), for this project's audience and issuer, unexpired, with a `sub`.
Anonymous and restricted users' tokens are refused.

The JWKS lives in the Django cache so every process shares one copy, and each process keeps
the keys it read, as built key objects, in its own memory for JWKS_PROCESS_SECONDS (one key
set per project, at most MAX_SIGNING_KEYS keys): a request with a known `kid` reads nothing.
A token with an unknown `kid` looks in the shared copy, then refetches the JWKS (Stack Auth
may have rotated keys), but at most once per `JWKS_REFETCH_INTERVAL` per project, so tokens
with made-up kids cannot flood Stack Auth.

A token the process has verified is recognised by its SHA-256 until its `exp` (at most
MAX_VERIFIED_TOKENS of them; all forgotten when the key set changes), so a client's next
requests skip the signature check. Whether the user was deleted is still asked on every
request (`_ensure_user_is_current`): a remembered token proves who it is, not that they
still exist.
"""

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.services import deleted_user_cache_key, stack_user_touch
from agents.app_keys import looks_like_app_key
from core.local_cache import LocalCache
from core.principals import Owner

logger = logging.getLogger(__name__)

ALGORITHM = "ES256"
JWKS_TIMEOUT = 3600  # Stack Auth serves the JWKS with max-age 3600.
JWKS_PROCESS_SECONDS = 300
# Stack Auth publishes two (the current key and the legacy one); more would not be a JWKS of
# theirs, and the process keeps no more than this.
MAX_SIGNING_KEYS = 16
JWKS_REFETCH_INTERVAL = 30
# After a failed fetch, answer 503 at once for a while instead of making every request
# wait on an unreachable Stack Auth.
JWKS_FAILURE_BACKOFF = 10
JWKS_FETCH_TIMEOUT = 5
LEEWAY_SECONDS = 30
MIRROR_TOUCH_INTERVAL = 300
# Real access tokens are well under 2 KB; anything far larger is not one.
MAX_TOKEN_LENGTH = 8192
# Verified tokens a process remembers (their claims, about 1 KB each).
MAX_VERIFIED_TOKENS = 4096
REQUIRED_CLAIMS = ["exp", "sub", "aud", "iss"]


class AuthenticationUnavailable(exceptions.APIException):
    """Stack Auth tokens cannot be verified right now: missing settings or JWKS unreachable."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "authentication_unavailable"
    default_detail = "User authentication is temporarily unavailable; try again shortly."


def _refused(detail: str) -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed(detail=detail, code="not_authenticated")


def jwks_url(api_url: str, project_id: str) -> str:
    """Return where Stack Auth publishes the project's signing keys."""
    return f"{api_url}/api/v1/projects/{project_id}/.well-known/jwks.json"


def expected_issuer(api_url: str, project_id: str) -> str:
    """Return the `iss` of a regular (not anonymous, not restricted) user's token."""
    return f"{api_url}/api/v1/projects/{project_id}"


def _jwks_cache_key(project_id: str) -> str:
    return f"stack_auth:jwks:{project_id}"


def _refetch_guard_key(project_id: str) -> str:
    return f"stack_auth:jwks_refetch:{project_id}"


def _failure_key(project_id: str) -> str:
    return f"stack_auth:jwks_down:{project_id}"


def _touch_guard_key(user_id: str) -> str:
    return f"stack_auth:touched:{user_id}"


def _fetch_jwks(api_url: str, project_id: str) -> dict[str, dict[str, Any]]:
    """Fetch the JWKS, cache its usable keys by `kid` and return them.

    Raise AuthenticationUnavailable when Stack Auth does not answer with a JWKS.
    """
    url = jwks_url(api_url, project_id)
    try:
        response = requests.get(url, timeout=JWKS_FETCH_TIMEOUT)
        response.raise_for_status()
        document = response.json()
        raw_keys = document["keys"]
        if not isinstance(raw_keys, list):
            raise TypeError("`keys` is not a list")
    except (requests.RequestException, ValueError, KeyError, TypeError) as error:
        logger.warning("Could not fetch the Stack Auth JWKS from %s: %s", url, error)
        cache.set(_failure_key(project_id), True, timeout=JWKS_FAILURE_BACKOFF)
        raise AuthenticationUnavailable(
            "User authentication is unavailable: Stack Auth's signing keys cannot be fetched."
        ) from None

    keys: dict[str, dict[str, Any]] = {}
    for raw_key in raw_keys:
        if not isinstance(raw_key, dict) or not isinstance(raw_key.get("kid"), str):
            continue
        if len(keys) == MAX_SIGNING_KEYS:
            logger.warning("The Stack Auth JWKS has over %s keys; using the first", len(keys))
            break
        try:
            jwt.PyJWK(raw_key, algorithm=ALGORITHM)
        except jwt.PyJWTError:
            # A key we cannot use for ES256 must not hide the ones we can.
            logger.warning("Ignoring unusable key %r in the Stack Auth JWKS", raw_key.get("kid"))
            continue
        keys[raw_key["kid"]] = raw_key
    cache.set(_jwks_cache_key(project_id), keys, timeout=JWKS_TIMEOUT)
    cache.delete(_failure_key(project_id))
    return keys


@dataclass(frozen=True)
class _KeySet:
    """A project's JWKS as read (to tell a change) and as key objects (to verify with)."""

    published: dict[str, dict[str, Any]]
    keys: dict[str, jwt.PyJWK]


# (API URL, project id) -> its key set; a few projects at most (the settings name one).
_key_sets: LocalCache[tuple[str, str], _KeySet] = LocalCache(max_entries=4)
# SHA-256 of (API URL, project id, token) -> the claims of a token this process verified,
# until the token's `exp` on the wall clock. Never past it: after `exp` the token goes
# through the whole check again (which still allows LEEWAY_SECONDS, as it always did).
_verified_tokens: LocalCache[bytes, dict[str, Any]] = LocalCache(
    max_entries=MAX_VERIFIED_TOKENS, clock=time.time
)


def signing_key(kid: str, *, api_url: str, project_id: str) -> jwt.PyJWK:
    """Return the project's public key named `kid`, fetching the JWKS when needed.

    Raise AuthenticationFailed for a `kid` the JWKS does not have, and
    AuthenticationUnavailable when the JWKS cannot be had at all.
    """
    project = (api_url, project_id)
    key_set = _key_sets.get(project)
    if key_set is None or kid not in key_set.keys:
        published = _published_keys(kid, api_url=api_url, project_id=project_id)
        if key_set is None or published != key_set.published:
            key_set = _KeySet(
                published,
                {name: jwt.PyJWK(raw, algorithm=ALGORITHM) for name, raw in published.items()},
            )
            # A key may have been withdrawn: what it verified is not taken on trust any more.
            _verified_tokens.clear()
        _key_sets.set_for(project, key_set, JWKS_PROCESS_SECONDS)
    if kid not in key_set.keys:
        raise _refused("The token is signed with an unknown key.")
    return key_set.keys[kid]


def _published_keys(kid: str, *, api_url: str, project_id: str) -> dict[str, dict[str, Any]]:
    """The project's JWKS from the shared cache, fetched when it has none or lacks `kid`."""
    keys: dict[str, dict[str, Any]] | None = cache.get(_jwks_cache_key(project_id))
    if keys is None:
        if cache.get(_failure_key(project_id)):
            raise AuthenticationUnavailable(
                "User authentication is unavailable: Stack Auth's signing keys cannot be fetched."
            )
        keys = _fetch_jwks(api_url, project_id)
    elif kid not in keys and cache.add(
        _refetch_guard_key(project_id), True, timeout=JWKS_REFETCH_INTERVAL
    ):
        # Stack Auth may have rotated its keys since we cached them.
        keys = _fetch_jwks(api_url, project_id)
    return keys


def _token_from(request: Request) -> str | None:
    """Return the Stack Auth token of the request, or None when it carries none."""
    header_token = request.META.get("HTTP_X_STACK_ACCESS_TOKEN")
    if header_token:
        return str(header_token).strip()

    authorization = get_authorization_header(request).split()
    if not authorization or authorization[0].lower() != b"bearer":
        return None
    if len(authorization) != 2:
        raise _refused("The Authorization header must be `Bearer <token>`.")
    try:
        token = authorization[1].decode("ascii")
    except UnicodeDecodeError:
        raise _refused("The bearer token is not a valid token.") from None
    if looks_like_app_key(token):
        return None  # An app's key: AppKeyAuthentication's business.
    return token


def verify_token(token: str) -> dict[str, Any]:
    """Verify a Stack Auth access token and return its claims.

    Raise AuthenticationFailed when the token is not a valid regular user's token for this
    project, and AuthenticationUnavailable when it cannot be checked right now.
    """
    project_id: str = settings.STACK_AUTH_PROJECT_ID
    api_url: str = settings.STACK_AUTH_API_URL.rstrip("/")
    if not project_id:
        raise AuthenticationUnavailable(
            "User authentication is unavailable: STACK_AUTH_PROJECT_ID is not configured."
        )
    if len(token) > MAX_TOKEN_LENGTH:
        raise _refused("The token is not a valid access token.")
    remembered = hashlib.sha256(f"{api_url}\n{project_id}\n{token}".encode()).digest()
    known = _verified_tokens.get(remembered)
    if known is not None:
        return dict(known)

    claims = _verified_claims(token, api_url=api_url, project_id=project_id)
    # PyJWT has checked that `exp` is a number: the token is recognised until then.
    _verified_tokens.set(remembered, dict(claims), until=float(claims["exp"]))
    return claims


def _verified_claims(token: str, *, api_url: str, project_id: str) -> dict[str, Any]:
    """Check the token's signature and claims (verify_token's work, without its memory)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _refused("The token is not a valid access token.") from None
    # Checked before any key lookup so `none`/HS256 tokens never reach the verifier.
    if header.get("alg") != ALGORITHM:
        raise _refused(f"The token must be signed with {ALGORITHM}.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refused("The token does not name its signing key.")

    key = signing_key(kid, api_url=api_url, project_id=project_id)
    try:
        # Audience and issuer are checked below, to tell anonymous and restricted users why.
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS, "verify_aud": False, "verify_iss": False},
        )
    except jwt.ExpiredSignatureError:
        raise _refused("The token has expired.") from None
    except jwt.InvalidSignatureError:
        raise _refused("The token's signature is invalid.") from None
    except jwt.MissingRequiredClaimError as error:
        raise _refused(f"The token has no `{error.claim}` claim.") from None
    except jwt.PyJWTError:
        raise _refused("The token is not a valid access token.") from None

    audience = claims["aud"]
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list):
        raise _refused("The token is not for this project.")
    if claims.get("is_anonymous") is True or any(
        isinstance(aud, str) and aud.endswith(":anon") for aud in audiences
    ):
        raise _refused("Anonymous users cannot use this API; sign in first.")
    if claims.get("is_restricted") is True or any(
        isinstance(aud, str) and aud.endswith(":restricted") for aud in audiences
    ):
        raise _refused("Restricted users cannot use this API; complete sign-up first.")
    if project_id not in audiences:
        raise _refused("The token is not for this project.")
    if claims["iss"] != expected_issuer(api_url, project_id):
        raise _refused("The token was not issued for this project.")
    if not isinstance(claims["sub"], str) or not claims["sub"] or "\x00" in claims["sub"]:
        raise _refused("The token has no user.")
    return claims


def _issued_at(claims: dict[str, Any]) -> dt.datetime | None:
    """When the token was issued (`iat`), if it says."""
    issued = claims.get("iat")
    if isinstance(issued, int | float) and not isinstance(issued, bool):
        return dt.datetime.fromtimestamp(issued, tz=dt.UTC)
    return None


def _optional_text(value: object) -> str | None:
    # PostgreSQL text cannot hold NUL characters; such a value is no use to us anyway.
    return value if isinstance(value, str) and value and "\x00" not in value else None


def _ensure_user_is_current(owner: Owner, issued_at: dt.datetime | None) -> None:
    """Refuse deleted users and refresh the user mirror, at most once per interval per user.

    In the usual case this is one cache read: the deletion mark and the touch guard together.
    """
    deleted_key, guard_key = deleted_user_cache_key(owner.id), _touch_guard_key(owner.id)
    found = cache.get_many([deleted_key, guard_key])
    if found.get(deleted_key):
        raise _refused("This user has been deleted.")
    if guard_key in found or not cache.add(guard_key, True, timeout=MIRROR_TOUCH_INTERVAL):
        return
    try:
        alive = stack_user_touch(
            user_id=owner.id,
            email=owner.email,
            display_name=owner.display_name,
            issued_at=issued_at,
        )
    except Exception:
        # Let the next request try again rather than skip the mirror for a whole interval.
        cache.delete(guard_key)
        raise
    if not alive:
        cache.set(deleted_key, True, timeout=JWKS_TIMEOUT)
        raise _refused("This user has been deleted.")


class StackAuthAuthentication(BaseAuthentication):
    """Authenticate an owner by a Stack Auth access token; leave app keys to their class."""

    def authenticate(self, request: Request) -> tuple[Owner, dict[str, Any]] | None:
        """Return the owner and the token's claims, or None when there is no Stack Auth token."""
        token = _token_from(request)
        if token is None:
            return None
        if not token:
            raise _refused("The access token is empty.")
        claims = verify_token(token)
        owner = Owner(
            id=claims["sub"],
            email=_optional_text(claims.get("email")),
            display_name=_optional_text(claims.get("name")),
        )
        _ensure_user_is_current(owner, _issued_at(claims))
        return owner, claims

    def authenticate_header(self, request: Request) -> str:
        """Name the scheme, which makes DRF answer unauthenticated requests 401, not 403."""
        return 'Bearer realm="api"'


class StackAuthScheme(OpenApiAuthenticationExtension):
    """Describe StackAuthAuthentication in the OpenAPI schema."""

    target_class = "accounts.authentication.StackAuthAuthentication"
    name = "StackAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        """Return the bearer JWT scheme; the `x-stack-access-token` header works the same."""
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "A Stack Auth access token, as `Authorization: Bearer <jwt>` or in the "
                "`x-stack-access-token` header."
            ),
        }
