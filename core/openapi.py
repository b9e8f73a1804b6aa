"""Additions to the generated OpenAPI schema: the error shape every operation can answer."""

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: a machine-readable code and a human detail.",
    "properties": {
        "code": {"type": "string", "example": "validation_error"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "For validation_error: the failing fields and their messages.",
            "additionalProperties": True,
        },
    },
    "required": ["code", "detail"],
    "additionalProperties": True,
}


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document the shared error body for client errors (4XX) and unavailability (503)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in (
                ("4XX", "A client error; `code` says which (see the README's list)."),
                ("503", "A dependency (database, cache, Stripe, Stack Auth) is unavailable."),
            ):
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result


# What drf-spectacular writes for a nullable JSON field under OpenAPI 3.1: "any value, or
# null" as a oneOf, which null matches twice (so no validator accepts null).
_ANY_OR_NULL = [{}, {"type": "null"}]


def simplify_nullable_any(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Write a nullable JSON field as the empty schema (any value, null included)."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("oneOf") == _ANY_OR_NULL:
                del node["oneOf"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result
