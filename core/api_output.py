"""Values written into response bodies exactly as DRF's serializer fields write them.

A ModelSerializer builds its fields again on every request and calls one field object per
value of every row: for a page of the hot lists that costs more than the query. Those lists
read rows with `.values()` and map each with one small function per resource instead
(`agents.api.serializers.agent_list_item`, `conversations.api.serializers.message_list_item`),
using these helpers for the values whose JSON form is not the Python value itself.
tests/test_list_bodies.py holds every page to its serializer's output, byte for byte.
"""

import datetime as dt
import uuid


def iso_datetime(value: dt.datetime | None, zone: dt.tzinfo) -> str | None:
    """As DRF's DateTimeField: ISO 8601 in `zone`, `Z` for UTC. Pass the current time zone
    (`django.utils.timezone.get_current_timezone()`), looked up once per response: the
    lookup costs more than the formatting."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def uuid_text(value: uuid.UUID | None) -> str | None:
    """As DRF's UUIDField (and a primary key related field, once rendered): hex with dashes."""
    return None if value is None else str(value)
