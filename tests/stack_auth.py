"""A stand-in for Stack Auth in tests: real ES256 keys, a real JWKS over HTTP, real tokens.

`StackAuthFake` serves its JWKS from a local HTTP server so the code under test fetches
it exactly as it fetches Stack Auth's, and mints access tokens with Stack Auth's claims.
`tests/conftest.py` starts one per test session and points the settings at it.
"""

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.local_http import LocalHttpServer

PROJECT_ID = "test-project"
CURRENT_KID = "stack-current"
LEGACY_KID = "stack-legacy"
# HS256 with a made-up secret: what an attacker who knows the algorithm list might try.
HMAC_SECRET = "not-a-stack-auth-key-but-long-enough-for-hs256"


def new_signing_key() -> ec.EllipticCurvePrivateKey:
    """Return a fresh P-256 private key, e.g. to sign a token with a key nobody published."""
    return ec.generate_private_key(ec.SECP256R1())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class StackAuthFake(LocalHttpServer):
    """Stack Auth's signing keys, its JWKS endpoint and its access tokens, for one project."""

    thread_name = "stack-auth-fake"

    def __init__(self, project_id: str = PROJECT_ID) -> None:
        self.project_id = project_id
        self.current_kid = CURRENT_KID
        self.legacy_kid = LEGACY_KID
        self.current_key = new_signing_key()
        self.legacy_key = new_signing_key()
        # Set `fail` to make the JWKS endpoint answer 503, as Stack Auth does when it is down.
        self.fail = False
        self.jwks_requests = 0
        self._lock = threading.Lock()
        super().__init__()

    # --- the JWKS endpoint -------------------------------------------------------------------

    @property
    def jwks_path(self) -> str:
        return f"/api/v1/projects/{self.project_id}/.well-known/jwks.json"

    def jwks(self) -> dict[str, Any]:
        """Return the published key set: the current and the legacy public key."""
        keys = []
        for kid, private_key in (
            (self.current_kid, self.current_key),
            (self.legacy_kid, self.legacy_key),
        ):
            public = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
            keys.append({**public, "kid": kid, "alg": "ES256", "use": "sig"})
        return {"keys": keys}

    def reset(self) -> None:
        """Make the endpoint healthy again and zero the request count."""
        with self._lock:
            self.fail = False
            self.jwks_requests = 0

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != fake.jwks_path:
                    self._answer(404, {"error": "not found"})
                    return
                with fake._lock:
                    fake.jwks_requests += 1
                    failing = fake.fail
                if failing:
                    self._answer(503, {"error": "unavailable"})
                else:
                    self._answer(200, fake.jwks())

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "public, max-age=3600")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # Keep test output clean.

        return Handler

    # --- tokens --------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/api/v1/projects/{self.project_id}"

    def claims(self, sub: str = "user_1", *, exp_in: int = 600) -> dict[str, Any]:
        """Return the claim set of a regular signed-in user's access token."""
        now = int(time.time())
        return {
            "sub": sub,
            "iss": self.issuer,
            "aud": self.project_id,
            "exp": now + exp_in,
            "iat": now,
            "project_id": self.project_id,
            "branch_id": "main",
            "refresh_token_id": str(uuid.uuid4()),
            "role": "authenticated",
            "name": f"User {sub}",
            "email": f"{sub}@example.com",
            "email_verified": True,
            "selected_team_id": None,
            "is_anonymous": False,
            "is_restricted": False,
        }

    def token(
        self,
        sub: str = "user_1",
        *,
        kid: str | None = None,
        key: Any = None,
        aud: str | None = None,
        iss: str | None = None,
        exp_in: int = 600,
        claims: dict[str, Any] | None = None,
        alg: str = "ES256",
    ) -> str:
        """Return a signed access token for `sub`.

        By default it is valid: signed with the current key and named by its kid. `key`
        signs with another key (a private key object, or a secret for HS256) while still
        naming `kid`; `claims` overrides or adds claims, a None value removes the claim.
        `alg="none"` gives an unsigned token.
        """
        payload = self.claims(sub, exp_in=exp_in)
        if aud is not None:
            payload["aud"] = aud
        if iss is not None:
            payload["iss"] = iss
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        headers = {"kid": kid or self.current_kid}

        if alg == "none":
            header = {"alg": "none", "typ": "JWT", **headers}
            return ".".join(
                [
                    _b64url(json.dumps(header).encode()),
                    _b64url(json.dumps(payload).encode()),
                    "",
                ]
            )
        if key is None:
            if alg.startswith("HS"):
                key = HMAC_SECRET
            else:
                key = self.legacy_key if headers["kid"] == self.legacy_kid else self.current_key
        return jwt.encode(payload, key, algorithm=alg, headers=headers)

    def anonymous_token(self, sub: str = "anon_1") -> str:
        """Return an anonymous user's token, shaped as Stack Auth issues them."""
        return self.token(
            sub,
            aud=f"{self.project_id}:anon",
            iss=f"{self.base_url}/api/v1/projects-anonymous-users/{self.project_id}",
            claims={
                "is_anonymous": True,
                "is_restricted": True,
                "email": None,
                "name": None,
                "role": "anon",
            },
        )

    def restricted_token(self, sub: str = "restricted_1") -> str:
        """Return a restricted user's token (e.g. email not verified yet)."""
        return self.token(
            sub,
            aud=f"{self.project_id}:restricted",
            iss=f"{self.base_url}/api/v1/projects-restricted-users/{self.project_id}",
            claims={
                "is_restricted": True,
                "email_verified": False,
                "restricted_reason": {"type": "email_not_verified"},
            },
        )
