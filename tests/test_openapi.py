"""The OpenAPI schema generates without warnings and describes both auth schemes."""

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient


def test_schema_generates_without_warnings_and_validates(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(out))

    schema = yaml.safe_load(out.read_text())
    schemes = schema["components"]["securitySchemes"]
    assert {"StackAuth", "AppKey"} <= set(schemes)
    assert "/api/v1/agents/" in schema["paths"]


@pytest.mark.django_db
def test_schema_and_docs_are_served(api_client: APIClient) -> None:
    assert api_client.get("/api/schema/").status_code == 200
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
