"""Input rules every write endpoint shares: unknown fields refused, JSON documents bounded,
text storable (`text_problem`, which the API's parser and the usage fast path apply too)."""

import json
from typing import Any

from rest_framework import serializers

MAX_JSON_DOCUMENT_BYTES = 64 * 1024
MAX_JSON_DEPTH = 20


class StrictFieldsMixin(serializers.Serializer):
    """Refuse fields the endpoint does not take, instead of silently ignoring them.

    A typo (`handel`) or an attempt to set a read-only field (`status`, `owner_id`) answers
    400 naming the field.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is not accepted here."] for name in unknown}
                )
        return super().to_internal_value(data)


NUL_PROBLEM = "Must not contain NUL characters."
UNENCODABLE_PROBLEM = "Must be valid Unicode text (no lone surrogates such as \\ud800)."


def text_problem(value: str) -> str | None:
    """Say why text cannot be stored, or None: the one rule every piece of client text obeys.

    PostgreSQL refuses NUL in text and jsonb, and psycopg cannot encode a lone surrogate
    (JSON's `"\\ud800"` decodes to one) as UTF-8; either would otherwise be a 500.
    """
    if "\x00" in value:
        return NUL_PROBLEM
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return UNENCODABLE_PROBLEM
    return None


def json_problem(value: Any, *, max_depth: int | None = None) -> str | None:
    """Say what is wrong with a parsed JSON value, or None: too deep, or bad text anywhere.

    Iterative, so that no nesting depth can exhaust Python's stack, and it stops at the first
    value past `max_depth`. Keys are text too.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        # A scalar counts as a level, as it always has: {"a": 1} is two levels deep.
        if max_depth is not None and level > max_depth:
            return f"Nested deeper than {max_depth} levels."
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str):
                    problem = text_problem(key)
                    if problem:
                        return problem
                pending.append((child, level + 1))
        elif isinstance(item, list):
            pending.extend((child, level + 1) for child in item)
    return None


class BoundedJSONField(serializers.JSONField):
    """A JSON document of at most 64 KiB and 20 levels; optionally it must be an object."""

    def __init__(self, *, require_object: bool = False, **kwargs: Any) -> None:
        self.require_object = require_object
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        # Checked before DRF's JSONField, whose json.dumps recurses once per level.
        problem = json_problem(data, max_depth=MAX_JSON_DEPTH)
        if problem:
            raise serializers.ValidationError(problem)
        value = super().to_internal_value(data)
        if self.require_object and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        size = len(json.dumps(value, ensure_ascii=False).encode())
        if size > MAX_JSON_DOCUMENT_BYTES:
            raise serializers.ValidationError(
                f"Larger than {MAX_JSON_DOCUMENT_BYTES // 1024} KiB once encoded."
            )
        return value
