"""Which address a request comes from: a header the client writes never decides it.

TRUSTED_PROXY_HOPS (default 0) is the number of our own proxies in front of the app. The
anonymous rate limit and the admin's login lockout both ask `client_ip_address`.
"""

import os
import subprocess
import sys
from typing import Any

import pytest
from axes.helpers import get_client_ip_address
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from rest_framework.request import Request

from billing.throttling import PlanRateThrottle
from core.client_address import client_ip_address

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"  # the load balancer, as the app sees it (REMOTE_ADDR)
ALICE = "198.51.100.7"
BOB = "203.0.113.9"


def plans(client: Client, forwarded_for: str | None = None) -> int:
    headers = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    return client.get("/api/v1/plans/", **headers).status_code


def test_without_trusted_proxies_a_rotating_forwarded_for_does_not_escape_the_anonymous_limit(
    settings: Any,
) -> None:
    settings.ANON_REQUESTS_PER_MINUTE = 5
    client = Client(REMOTE_ADDR=ALICE)

    statuses = [plans(client, f"192.0.2.{n}") for n in range(8)]

    assert statuses == [200] * 5 + [429] * 3


def test_behind_one_proxy_a_forged_forwarded_for_prefix_does_not_escape_the_limit(
    settings: Any,
) -> None:
    settings.TRUSTED_PROXY_HOPS = 1
    settings.ANON_REQUESTS_PER_MINUTE = 5
    client = Client(REMOTE_ADDR=PROXY)

    # The proxy appends the address it saw; whatever the client wrote stands to its left.
    statuses = [plans(client, f"192.0.2.{n}, {ALICE}") for n in range(8)]

    assert statuses == [200] * 5 + [429] * 3


def test_behind_one_proxy_two_clients_have_separate_anonymous_limits(settings: Any) -> None:
    settings.TRUSTED_PROXY_HOPS = 1
    settings.ANON_REQUESTS_PER_MINUTE = 3
    client = Client(REMOTE_ADDR=PROXY)

    alice = [plans(client, ALICE) for _ in range(4)]
    bob = plans(client, BOB)

    assert alice == [200, 200, 200, 429]
    assert bob == 200


def failed_logins(client: Client, forwarded_for: str, times: int) -> None:
    for _ in range(times):
        client.post(
            "/admin/login/",
            {"username": "ops", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=forwarded_for,
        )


def login(client: Client, forwarded_for: str) -> int:
    body = {"username": "ops", "password": "right-password-123"}
    return client.post("/admin/login/", body, HTTP_X_FORWARDED_FOR=forwarded_for).status_code


@pytest.fixture
def lockout(settings: Any) -> None:
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_superuser("ops", password="right-password-123")


@pytest.mark.usefixtures("lockout")
def test_behind_one_proxy_bad_passwords_from_one_client_do_not_lock_out_another(
    settings: Any,
) -> None:
    settings.TRUSTED_PROXY_HOPS = 1

    failed_logins(Client(REMOTE_ADDR=PROXY), ALICE, times=3)
    attacker = login(Client(REMOTE_ADDR=PROXY), ALICE)
    staff = login(Client(REMOTE_ADDR=PROXY), BOB)

    assert attacker == 429
    assert staff == 302  # logged in, sent on to the admin


@pytest.mark.usefixtures("lockout")
def test_without_trusted_proxies_a_rotating_forwarded_for_does_not_escape_the_lockout() -> None:
    client = Client(REMOTE_ADDR=ALICE)
    for n in range(3):
        failed_logins(client, f"192.0.2.{n}", times=1)

    assert login(client, "192.0.2.200") == 429


@pytest.mark.parametrize("hops", [0, 1, 2])
@pytest.mark.parametrize(
    "forwarded_for",
    [
        None,
        "",
        ALICE,
        f"{ALICE}, {BOB}",
        f"garbage, {BOB}, {ALICE}",
        "not-an-address",
        "::1, 2001:db8::1",
    ],
)
def test_the_throttle_and_the_lockout_see_the_same_address(
    settings: Any, hops: int, forwarded_for: str | None
) -> None:
    settings.TRUSTED_PROXY_HOPS = hops
    headers = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, **headers)

    throttle_sees = PlanRateThrottle().get_ident(Request(request))
    lockout_sees = get_client_ip_address(request)

    assert throttle_sees == lockout_sees == client_ip_address(request)
    if hops == 0 or not forwarded_for or forwarded_for == "not-an-address":
        assert lockout_sees == PROXY


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "expected"),
    [
        (1, ALICE, ALICE),
        (1, f"192.0.2.1, {ALICE}", ALICE),
        (2, f"192.0.2.1, {ALICE}, 10.0.0.1", ALICE),
        # Fewer addresses than proxies: the header did not come through our proxies.
        (2, ALICE, PROXY),
    ],
)
def test_the_client_is_the_address_our_outermost_proxy_saw(
    settings: Any, hops: int, forwarded_for: str, expected: str
) -> None:
    settings.TRUSTED_PROXY_HOPS = hops
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)

    assert client_ip_address(request) == expected


def settings_of(environment: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter with `environment` and print `expression`."""
    program = (
        f"import django; django.setup(); from django.conf import settings; print({expression})"
    )
    return subprocess.run(  # noqa: S603 (the program is this module's own)
        [sys.executable, "-c", program],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "a1zap.settings.base", **environment},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_one_setting_tells_drf_and_axes_how_many_proxies_to_trust() -> None:
    result = settings_of(
        {"TRUSTED_PROXY_HOPS": "2"},
        "settings.TRUSTED_PROXY_HOPS, settings.REST_FRAMEWORK['NUM_PROXIES'],"
        " settings.AXES_CLIENT_IP_CALLABLE",
    )

    assert result.stdout.split() == ["2", "2", "core.client_address.client_ip_address"]


def test_a_negative_number_of_proxies_is_refused_at_start() -> None:
    result = settings_of({"TRUSTED_PROXY_HOPS": "-1"}, "settings.TRUSTED_PROXY_HOPS")

    assert result.returncode != 0
    assert "TRUSTED_PROXY_HOPS" in result.stderr
