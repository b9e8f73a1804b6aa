"""No input a client can send causes a 500: size, encoding, nesting, NUL bytes, odd params."""

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from agents.models import A1Agent
from agents.services import agent_create
from usage.models import AgentUsage

pytestmark = pytest.mark.django_db


@pytest.fixture
def app_headers() -> dict[str, str]:
    _, key = agent_create(owner_id="user_1", name="Bot", handle="input_bot", agent_type="work")
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_an_oversized_body_is_413_with_the_error_shape(app_headers: dict[str, str]) -> None:
    huge = json.dumps({"events": [{"id": "x" * 200, "messages": 1}] * 6000})
    assert len(huge) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = Client().post(
        "/api/v1/usage/events/", huge, content_type="application/json", **app_headers
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not AgentUsage.objects.exists()


def test_an_oversized_webhook_body_is_413(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    body = b"{" + b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b"}"

    response = Client().post("/stripe/webhook/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_json_nested_too_deep_to_parse_is_400(app_headers: dict[str, str]) -> None:
    body = "[" * 100_000 + "]" * 100_000

    response = Client().post(
        "/api/v1/usage/events/", body, content_type="application/json", **app_headers
    )

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_a_body_that_is_not_utf8_is_400(owner_headers: Any) -> None:
    response = Client().post(
        "/api/v1/agents/", b'{"name": "\xff\xfe"}', content_type="application/json",
        **owner_headers(),
    )  # fmt: skip

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\x00b", "handle": "nul_name", "agent_type": "work"},
        {"name": "ok", "handle": "nul\x00handle", "agent_type": "work"},
        {"name": "ok", "handle": "nul_meta", "agent_type": "work", "settings": {"k\x00": 1}},
        {"name": "ok", "handle": "nul_desc", "agent_type": "work", "description": "\x00"},
    ],
)
def test_nul_bytes_in_text_are_400_not_500(
    api_client: APIClient, owner_headers: Any, body: dict[str, Any]
) -> None:
    response = api_client.post("/api/v1/agents/", body, format="json", **owner_headers())

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert not A1Agent.objects.exists()


CURSOR_GARBAGE = "cD1nYXJiYWdl"  # base64 of "p=garbage"
CURSOR_BAD_DATE = "bz0wJnA9OTk5OS05OS05OQ%3D%3D"  # "o=0&p=9999-99-99"
CURSOR_NUL = "cD0yMDI2LTAxLTAxJTAw"  # "p=2026-01-01%00"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/public/agents/ab%00cd/",
        "/api/v1/handles/ab%00cd/",
        "/api/v1/agents/?status=%00",
        "/api/v1/agents/?agent_type=personal&unknown=1&page_size=abc",
        "/api/v1/agents/?cursor=not-a-cursor",
        # Cursors whose position is not a time: the list's SQL never sees them.
        f"/api/v1/agents/?cursor={CURSOR_GARBAGE}",
        f"/api/v1/agents/?cursor={CURSOR_BAD_DATE}",
        f"/api/v1/agents/?cursor={CURSOR_NUL}",
        "/api/v1/conversations/?agent=not-a-uuid",
        "/api/v1/conversations/?agent=%00",
        "/api/v1/integrations/?agent=123",
        "/api/v1/usage/summary/?month=9999-12",
        "/api/v1/usage/summary/?month=%00",
        "/api/v1/agents/00000000-0000-0000-0000-000000000000/usage/?start=0001-01-01",
        "/api/v1/agents/00000000-0000-0000-0000-000000000000/",
        "/api/v1/conversations/12345/messages/",
    ],
)
def test_odd_paths_and_query_parameters_never_answer_500(
    api_client: APIClient, owner_headers: Any, path: str
) -> None:
    response = api_client.get(path, **owner_headers())

    assert response.status_code < 500, response.content
    assert "code" in response.json() or response.status_code == 200


def test_far_future_and_far_past_dates_are_refused_cleanly(
    api_client: APIClient, owner_headers: Any, app_headers: dict[str, str]
) -> None:
    agent = A1Agent.objects.get(handle="input_bot")
    usage = api_client.get(
        f"/api/v1/agents/{agent.pk}/usage/?start=9999-12-01&end=9999-12-31", **owner_headers()
    )
    event = api_client.post(
        "/api/v1/usage/events/", {"id": "f", "timestamp": "9999-12-31T23:59:59Z"},
        format="json", **app_headers,
    )  # fmt: skip

    assert usage.status_code in (200, 400)
    assert event.status_code == 400


def test_every_response_carries_a_request_id_and_echoes_a_sane_one() -> None:
    fresh = Client().get("/healthz")
    echoed = Client().get("/healthz", HTTP_X_REQUEST_ID="trace-abc.123")
    hostile = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert len(fresh["X-Request-ID"]) == 32
    assert echoed["X-Request-ID"] == "trace-abc.123"
    assert hostile["X-Request-ID"] != "bad id\nwith newline"


def test_admin_logins_are_locked_out_after_repeated_failures(settings: Any) -> None:
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_superuser("ops", password="right-password-123")
    client = Client()

    for _ in range(3):
        client.post("/admin/login/", {"username": "ops", "password": "wrong"})
    locked = client.post("/admin/login/", {"username": "ops", "password": "right-password-123"})

    assert locked.status_code in (403, 429)
    assert "_auth_user_id" not in client.session


def test_production_settings_pass_check_deploy() -> None:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "a1zap.settings.production",
        "SECRET_KEY": "prod-" + "k3y-" * 20,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "STACK_AUTH_PROJECT_ID": "project",
        "ALLOWED_HOSTS": "api.a1zap.com",
        "CSRF_TRUSTED_ORIGINS": "https://api.a1zap.com",
    }
    environment.pop("STRIPE_API_BASE", None)

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_its_secrets() -> None:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "a1zap.settings.production"}
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "STACK_AUTH_PROJECT_ID"):
        environment.pop(name, None)

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=environment,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert "SECRET_KEY, FIELD_ENCRYPTION_KEYS, STACK_AUTH_PROJECT_ID" in result.stderr
