"""Input rules every write endpoint shares: unknown fields refused, JSON documents bounded."""

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


def _depth_and_nul(value: Any, level: int = 1) -> tuple[int, bool]:
    """Return how deep a JSON value nests and whether any key or string holds a NUL."""
    if isinstance(value, dict):
        children = [_depth_and_nul(item, level + 1) for item in value.values()]
        has_nul = any("\x00" in key for key in value)
    elif isinstance(value, list):
        children = [_depth_and_nul(item, level + 1) for item in value]
        has_nul = False
    else:
        return level, isinstance(value, str) and "\x00" in value
    depth = max((child[0] for child in children), default=level)
    return depth, has_nul or any(child[1] for child in children)


class BoundedJSONField(serializers.JSONField):
    """A JSON document of at most 64 KiB and 20 levels; optionally it must be an object."""

    def __init__(self, *, require_object: bool = False, **kwargs: Any) -> None:
        self.require_object = require_object
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if self.require_object and not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        depth, has_nul = _depth_and_nul(value)
        if depth > MAX_JSON_DEPTH:
            raise serializers.ValidationError(f"Nested deeper than {MAX_JSON_DEPTH} levels.")
        if has_nul:
            # PostgreSQL's jsonb cannot store \u0000.
            raise serializers.ValidationError("Must not contain NUL characters.")
        size = len(json.dumps(value, ensure_ascii=False).encode())
        if size > MAX_JSON_DOCUMENT_BYTES:
            raise serializers.ValidationError(
                f"Larger than {MAX_JSON_DOCUMENT_BYTES // 1024} KiB once encoded."
            )
        return value
