import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client, override_settings


def test_healthz_answers_without_touching_dependencies(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_cache_and_broker(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "cache": True, "broker": True}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_readyz_answers_503_naming_the_broker_when_it_is_down(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": True, "cache": True, "broker": False}
    assert "broker" in body["detail"]


@pytest.mark.django_db
@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
)
def test_readyz_answers_503_with_a_code_when_the_cache_is_down(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response.json()["checks"]["cache"] is False


def test_unreachable_database_server_is_one_line_naming_database_url() -> None:
    environment = {**os.environ, "DATABASE_URL": "postgres://root@127.0.0.1:1/a1zap"}

    result = subprocess.run(
        [sys.executable, "manage.py", "ensure_database"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr
