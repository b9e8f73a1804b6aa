"""Owners authenticate with Stack Auth access tokens, verified against a real JWKS server."""

import datetime as dt
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from jwt.algorithms import ECAlgorithm
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from accounts import authentication
from accounts.authentication import MAX_SIGNING_KEYS
from accounts.models import StackUser
from accounts.services import stack_user_delete
from tests.stack_auth import StackAuthFake, new_signing_key

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_auth")]

WHOAMI = "/test/whoami/"


def whoami(client: APIClient, token: str | None = None, **headers: Any) -> Any:
    if token is not None:
        headers.setdefault("HTTP_X_STACK_ACCESS_TOKEN", token)
    return client.get(WHOAMI, **headers)


def assert_refused(response: Any) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json().get("code") == "not_authenticated"


# --- accepted tokens -------------------------------------------------------------------------


def test_valid_token_in_x_stack_access_token_authenticates_the_owner(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    response = whoami(api_client, stack_auth.token("user_42"))

    assert response.status_code == 200
    assert response.json() == {"owner_id": "user_42"}


def test_valid_token_as_authorization_bearer_authenticates_the_owner(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    response = whoami(api_client, HTTP_AUTHORIZATION=f"Bearer {stack_auth.token('user_7')}")

    assert response.status_code == 200
    assert response.json() == {"owner_id": "user_7"}


def test_token_signed_with_the_legacy_key_is_accepted(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    response = whoami(api_client, stack_auth.token("user_1", kid=stack_auth.legacy_kid))

    assert response.status_code == 200
    assert response.json() == {"owner_id": "user_1"}


def test_token_just_past_exp_is_accepted_within_the_leeway(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    response = whoami(api_client, stack_auth.token(exp_in=-5))

    assert response.status_code == 200


# --- refused tokens --------------------------------------------------------------------------


def test_request_without_token_is_refused_with_401(api_client: APIClient) -> None:
    response = api_client.get(WHOAMI)

    assert_refused(response)


def test_expired_token_is_refused(api_client: APIClient, stack_auth: StackAuthFake) -> None:
    response = whoami(api_client, stack_auth.token(exp_in=-120))

    assert_refused(response)
    assert "expired" in response.json()["detail"]


def test_token_signed_by_an_unpublished_key_with_a_known_kid_is_refused(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    token = stack_auth.token(kid=stack_auth.current_kid, key=new_signing_key())

    assert_refused(whoami(api_client, token))


def test_token_for_another_project_is_refused(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    assert_refused(whoami(api_client, stack_auth.token(aud="other-project")))


def test_token_from_another_issuer_is_refused(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    token = stack_auth.token(iss="https://evil.example/api/v1/projects/test-project")

    assert_refused(whoami(api_client, token))


def test_anonymous_users_token_is_refused(api_client: APIClient, stack_auth: StackAuthFake) -> None:
    response = whoami(api_client, stack_auth.anonymous_token())

    assert_refused(response)
    assert "Anonymous" in response.json()["detail"]


def test_restricted_users_token_is_refused(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    response = whoami(api_client, stack_auth.restricted_token())

    assert_refused(response)
    assert "Restricted" in response.json()["detail"]


@pytest.mark.parametrize("claim", ["is_anonymous", "is_restricted"])
def test_token_flagged_anonymous_or_restricted_is_refused_whatever_its_audience(
    api_client: APIClient, stack_auth: StackAuthFake, claim: str
) -> None:
    assert_refused(whoami(api_client, stack_auth.token(claims={claim: True})))


def test_token_without_sub_is_refused(api_client: APIClient, stack_auth: StackAuthFake) -> None:
    assert_refused(whoami(api_client, stack_auth.token(claims={"sub": None})))


def test_token_without_exp_is_refused(api_client: APIClient, stack_auth: StackAuthFake) -> None:
    assert_refused(whoami(api_client, stack_auth.token(claims={"exp": None})))


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "x" * 20_000, " "],
)
def test_garbage_token_is_refused(api_client: APIClient, token: str) -> None:
    assert_refused(whoami(api_client, token))


@pytest.mark.parametrize("alg", ["none", "HS256", "ES384"])
def test_token_with_another_algorithm_is_refused_without_fetching_keys(
    api_client: APIClient, stack_auth: StackAuthFake, alg: str
) -> None:
    key = ec.generate_private_key(ec.SECP384R1()) if alg == "ES384" else None
    token = stack_auth.token(alg=alg, key=key)

    response = whoami(api_client, token)

    assert_refused(response)
    assert stack_auth.jwks_requests == 0


def test_bearer_without_a_token_is_refused(api_client: APIClient) -> None:
    assert_refused(whoami(api_client, HTTP_AUTHORIZATION="Bearer"))


def test_app_key_is_left_to_the_app_key_authentication(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    # Only StackAuthAuthentication guards this view, so an app key leaves it unauthenticated.
    response = whoami(api_client, HTTP_AUTHORIZATION="Bearer a1app_0123456789abcdef")

    assert_refused(response)
    assert stack_auth.jwks_requests == 0


def test_other_authorization_schemes_are_not_ours(api_client: APIClient) -> None:
    assert_refused(whoami(api_client, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz"))


# --- the JWKS and its cache ------------------------------------------------------------------


def test_jwks_is_fetched_once_and_then_served_from_the_cache(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    first = whoami(api_client, stack_auth.token("user_1"))
    second = whoami(api_client, stack_auth.token("user_2", kid=stack_auth.legacy_kid))

    assert (first.status_code, second.status_code) == (200, 200)
    assert stack_auth.jwks_requests == 1


def test_known_keys_are_kept_in_process_memory_without_the_shared_cache(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    assert whoami(api_client, stack_auth.token("user_1")).status_code == 200
    cache.clear()  # the shared copy of the JWKS is gone
    stack_auth.fail = True  # and Stack Auth cannot give it again

    response = whoami(api_client, stack_auth.token("user_2", kid=stack_auth.legacy_kid))

    assert response.status_code == 200
    assert stack_auth.jwks_requests == 1


def test_a_key_stack_auth_adds_is_used_after_one_refetch(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    assert whoami(api_client, stack_auth.token()).status_code == 200
    stack_auth.current_kid, stack_auth.current_key = "stack-next", new_signing_key()

    response = whoami(api_client, stack_auth.token("user_2"))

    assert response.status_code == 200
    assert stack_auth.jwks_requests == 2


def test_a_key_stack_auth_withdraws_stops_verifying_once_the_jwks_is_refetched(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    legacy = stack_auth.token("user_1", kid=stack_auth.legacy_kid)
    assert whoami(api_client, legacy).status_code == 200
    stack_auth.legacy_kid, stack_auth.legacy_key = "stack-legacy-2", new_signing_key()
    # A token naming the new key makes the process read the JWKS again.
    assert (
        whoami(
            api_client, stack_auth.token("user_2", kid="stack-legacy-2", key=stack_auth.legacy_key)
        ).status_code
        == 200
    )

    assert_refused(whoami(api_client, legacy))


def test_a_jwks_of_too_many_keys_is_cut_to_the_bound(
    api_client: APIClient, stack_auth: StackAuthFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = stack_auth.jwks()
    extra = new_signing_key()
    public = ECAlgorithm.to_jwk(extra.public_key(), as_dict=True)
    many = [{**public, "kid": f"extra-{n}", "alg": "ES256"} for n in range(MAX_SIGNING_KEYS)]
    monkeypatch.setattr(stack_auth, "jwks", lambda: {"keys": published["keys"] + many})

    first = whoami(api_client, stack_auth.token("user_1"))
    within = whoami(api_client, stack_auth.token(kid=f"extra-{MAX_SIGNING_KEYS - 3}", key=extra))
    beyond = whoami(api_client, stack_auth.token(kid=f"extra-{MAX_SIGNING_KEYS - 1}", key=extra))

    assert (first.status_code, within.status_code) == (200, 200)
    assert_refused(beyond)


def test_unknown_kid_refetches_the_jwks_once_then_is_refused(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    assert whoami(api_client, stack_auth.token()).status_code == 200

    response = whoami(api_client, stack_auth.token(kid="rotated-kid", key=new_signing_key()))

    assert_refused(response)
    assert stack_auth.jwks_requests == 2


def test_flood_of_unknown_kids_causes_at_most_one_extra_fetch(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    assert whoami(api_client, stack_auth.token()).status_code == 200
    key = new_signing_key()

    responses = [
        whoami(api_client, stack_auth.token(kid=f"random-{n}", key=key)) for n in range(20)
    ]

    assert {response.status_code for response in responses} == {401}
    assert stack_auth.jwks_requests <= 2


def test_unreachable_jwks_answers_503_authentication_unavailable(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    stack_auth.fail = True

    response = whoami(api_client, stack_auth.token())

    assert response.status_code == 503
    assert response.json().get("code") == "authentication_unavailable"
    assert "signing keys" in response.json()["detail"]


def test_unreachable_jwks_is_not_asked_again_on_every_request(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    stack_auth.fail = True

    statuses = [whoami(api_client, stack_auth.token()).status_code for _ in range(5)]

    assert statuses == [503] * 5
    assert stack_auth.jwks_requests == 1


def test_jwks_server_that_is_not_listening_answers_503(
    api_client: APIClient, stack_auth: StackAuthFake, settings: SettingsWrapper
) -> None:
    # Port 9 (discard) on localhost refuses connections on these machines.
    settings.STACK_AUTH_API_URL = "http://127.0.0.1:9"

    response = whoami(api_client, stack_auth.token(iss="http://127.0.0.1:9/api/v1/projects/x"))

    assert response.status_code == 503
    assert response.json().get("code") == "authentication_unavailable"


def test_cached_keys_keep_working_while_the_jwks_server_is_down(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    assert whoami(api_client, stack_auth.token()).status_code == 200
    stack_auth.fail = True

    response = whoami(api_client, stack_auth.token("user_2"))

    assert response.status_code == 200


def test_unknown_kid_when_the_refetch_fails_answers_503(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    assert whoami(api_client, stack_auth.token()).status_code == 200
    stack_auth.fail = True

    response = whoami(api_client, stack_auth.token(kid="rotated-kid", key=new_signing_key()))

    assert response.status_code == 503
    assert response.json().get("code") == "authentication_unavailable"


def test_missing_project_id_answers_503_naming_the_setting(
    api_client: APIClient, stack_auth: StackAuthFake, settings: SettingsWrapper
) -> None:
    settings.STACK_AUTH_PROJECT_ID = ""

    response = whoami(api_client, stack_auth.token())

    assert response.status_code == 503
    assert response.json().get("code") == "authentication_unavailable"
    assert "STACK_AUTH_PROJECT_ID" in response.json()["detail"]


def test_missing_project_id_still_answers_401_without_a_token(
    api_client: APIClient, settings: SettingsWrapper
) -> None:
    settings.STACK_AUTH_PROJECT_ID = ""

    assert_refused(api_client.get(WHOAMI))


# --- verified tokens kept in process memory -------------------------------------------------


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every ES256 signature check (PyJWT's), to see when a token is verified."""
    checks: list[bytes] = []
    original = ECAlgorithm.verify

    def verify(self: ECAlgorithm, message: bytes, key: Any, signature: bytes) -> bool:
        checks.append(message)
        return bool(original(self, message, key, signature))

    monkeypatch.setattr(ECAlgorithm, "verify", verify)
    return checks


def test_a_token_is_verified_once_then_recognised_until_its_exp(
    api_client: APIClient, stack_auth: StackAuthFake, signature_checks: list[bytes]
) -> None:
    token, other = stack_auth.token("user_1"), stack_auth.token("user_1")

    statuses = [whoami(api_client, t).status_code for t in (token, token, token, other)]

    assert statuses == [200] * 4
    assert len(signature_checks) == 2


def test_a_recognised_token_is_verified_again_once_its_exp_is_reached(
    api_client: APIClient,
    stack_auth: StackAuthFake,
    signature_checks: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = stack_auth.token("user_1", exp_in=120)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert whoami(api_client, token).status_code == 200

    # The process's clock reaches the token's exp: it is no longer taken on trust.
    monkeypatch.setattr(authentication._verified_tokens, "clock", lambda: float(exp))
    assert whoami(api_client, token).status_code == 200

    assert len(signature_checks) == 2


def test_a_recognised_token_of_a_user_deleted_since_is_refused(
    api_client: APIClient, stack_auth: StackAuthFake, django_capture_on_commit_callbacks: Any
) -> None:
    token = stack_auth.token("user_gone")
    assert whoami(api_client, token).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        stack_user_delete(user_id="user_gone")

    response = whoami(api_client, token)

    assert_refused(response)
    assert "deleted" in response.json()["detail"]


def test_a_recognised_token_of_a_user_deleted_on_another_host_is_refused_at_the_next_touch(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    token = stack_auth.token("user_gone")
    assert whoami(api_client, token).status_code == 200
    # Deleted by another host whose mark never reached this cache: the mirror's tombstone
    # refuses the token as soon as the touch interval lets the mirror be read again.
    stack_user_delete(user_id="user_gone")
    cache.clear()

    assert_refused(whoami(api_client, token))


def test_recognised_tokens_are_kept_per_project(
    api_client: APIClient, stack_auth: StackAuthFake, settings: SettingsWrapper
) -> None:
    token = stack_auth.token("user_1")
    assert whoami(api_client, token).status_code == 200

    settings.STACK_AUTH_PROJECT_ID = "another-project"

    assert whoami(api_client, token).status_code in (401, 503)


# --- the user mirror -------------------------------------------------------------------------


def test_first_request_creates_the_mirror_row_from_the_token(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    whoami(api_client, stack_auth.token("user_9", claims={"name": "Ada", "email": "ada@x.io"}))

    user = StackUser.objects.get(pk="user_9")
    assert (user.email, user.display_name, user.deleted_at) == ("ada@x.io", "Ada", None)
    assert user.first_seen_at is not None
    assert user.last_seen_at is not None


def test_mirror_is_not_written_again_within_the_touch_interval(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    whoami(api_client, stack_auth.token("user_9"))
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    StackUser.objects.filter(pk="user_9").update(last_seen_at=long_ago)

    with CaptureQueriesContext(connection) as queries:
        response = whoami(api_client, stack_auth.token("user_9", claims={"name": "Renamed"}))

    assert response.status_code == 200
    assert len(queries) == 0
    user = StackUser.objects.get(pk="user_9")
    assert user.last_seen_at == long_ago
    assert user.display_name == "User user_9"


def test_mirror_is_refreshed_once_the_touch_interval_has_passed(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    whoami(api_client, stack_auth.token("user_9"))
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    StackUser.objects.filter(pk="user_9").update(first_seen_at=long_ago, last_seen_at=long_ago)
    # Clearing the cache stands in for the interval running out (the guard's key expiring).
    cache.clear()

    whoami(api_client, stack_auth.token("user_9", claims={"name": "Renamed", "email": "n@x.io"}))

    user = StackUser.objects.get(pk="user_9")
    assert user.first_seen_at == long_ago
    assert user.last_seen_at > long_ago
    assert (user.display_name, user.email) == ("Renamed", "n@x.io")


def test_deleted_users_valid_token_is_refused(
    api_client: APIClient,
    stack_auth: StackAuthFake,
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert whoami(api_client, stack_auth.token("user_gone")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        stack_user_delete(user_id="user_gone")

    response = whoami(api_client, stack_auth.token("user_gone"))

    assert_refused(response)
    assert "deleted" in response.json()["detail"]


def test_deleted_user_is_refused_even_when_the_cache_lost_the_mark(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    stack_user_delete(user_id="user_gone")
    cache.clear()

    response = whoami(api_client, stack_auth.token("user_gone"))

    assert_refused(response)
    assert StackUser.objects.get(pk="user_gone").email is None


# --- schema ----------------------------------------------------------------------------------


def test_schema_describes_stack_auth_as_a_bearer_jwt_scheme() -> None:
    schema = SchemaGenerator(urlconf="tests.urls_auth").get_schema(request=None, public=True)

    assert schema["components"]["securitySchemes"]["StackAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "A Stack Auth access token, as `Authorization: Bearer <jwt>` or in the "
            "`x-stack-access-token` header."
        ),
    }


# --- admin -----------------------------------------------------------------------------------


def test_staff_find_a_mirrored_user_by_id_or_by_email_in_any_case(admin_client: Client) -> None:
    StackUser.objects.create(id="user_a", email="Ada@Example.com", display_name="Ada")
    StackUser.objects.create(id="user_b", email="bob@example.com")
    changelist = "/admin/accounts/stackuser/"

    by_email = admin_client.get(changelist, {"q": "ada@example.COM"})
    by_id = admin_client.get(changelist, {"q": "user_b"})
    detail = admin_client.get(f"{changelist}user_a/change/")

    assert by_email.status_code == 200
    assert [user.pk for user in by_email.context["cl"].result_list] == ["user_a"]
    assert [user.pk for user in by_id.context["cl"].result_list] == ["user_b"]
    assert detail.status_code == 200
    assert b"Ada@Example.com" in detail.content


def test_a_token_older_than_the_last_webhook_does_not_write_its_email_back(
    api_client: APIClient, stack_auth: StackAuthFake
) -> None:
    """A user changed their email (the webhook is applied); a token issued before it still
    carries the old one, and must not put it back (usage alerts are emailed there)."""
    now = dt.datetime.now(dt.UTC)
    changed = now - dt.timedelta(minutes=10)
    StackUser.objects.create(id="user_9", email="new@x.io", display_name="New",
                             last_event_at=changed, last_event_id="msg_2")  # fmt: skip
    old = int((changed - dt.timedelta(minutes=5)).timestamp())
    whoami(api_client, stack_auth.token("user_9", claims={"iat": old, "email": "old@x.io",
                                                          "name": "Old"}))  # fmt: skip
    user = StackUser.objects.get(pk="user_9")
    assert (user.email, user.display_name) == ("new@x.io", "New")
    cache.clear()
    later = int(now.timestamp())
    whoami(api_client, stack_auth.token("user_9", claims={"iat": later, "email": "newer@x.io"}))
    assert StackUser.objects.get(pk="user_9").email == "newer@x.io"
