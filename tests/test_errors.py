"""Every error the API gives is JSON with a machine-readable code and a human detail."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

Headers = Callable[..., dict[str, str]]


def test_unknown_api_path_is_json_404(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found."}


def test_invalid_uuid_in_path_is_404_not_500(api_client: APIClient, owner_headers: Headers) -> None:
    response = api_client.get("/api/v1/agents/not-a-uuid/", **owner_headers())

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_method_not_allowed_is_405_with_a_code(
    api_client: APIClient, owner_headers: Headers
) -> None:
    response = api_client.put("/api/v1/agents/", {}, format="json", **owner_headers())

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_malformed_json_is_400_with_a_code(api_client: APIClient, owner_headers: Headers) -> None:
    response = api_client.post(
        "/api/v1/agents/", "{not json", content_type="application/json", **owner_headers()
    )

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_wrong_content_type_is_415_with_a_code(
    api_client: APIClient, owner_headers: Headers
) -> None:
    response = api_client.post(
        "/api/v1/agents/", "name=x", content_type="text/plain", **owner_headers()
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_a_list_body_where_an_object_is_expected_is_a_validation_error(
    api_client: APIClient, owner_headers: Headers
) -> None:
    response = api_client.post("/api/v1/agents/", [1, 2], format="json", **owner_headers())

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
