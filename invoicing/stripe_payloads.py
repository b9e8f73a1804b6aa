"""What a Stripe webhook event must look like before anything of it is applied.

A valid signature says who sent a body, not that it is well formed (a test-mode secret can sign
anything). Every field `invoicing.stripe_events` reads is checked here, with its type and range,
and the whole event must be text PostgreSQL can store; a body that fails is refused with 400
`validation_error` (naming the field) before dj-stripe or our tables see any of it.
"""

import json
from typing import Any

from rest_framework import status

from core.api_input import json_problem
from core.errors import ServiceError

# Unix times from 1970 to the end of year 9999 (what a datetime can hold).
MAX_TIMESTAMP = 253_402_300_799
# Amounts in cents that `billing_events.amount` (NUMERIC(10, 2)) can hold.
MAX_CENTS = 10**10 - 1
TIMESTAMP_FIELDS = ("current_period_start", "current_period_end", "canceled_at", "ended_at",
                    "cancel_at")  # fmt: skip
AMOUNT_FIELDS = ("amount_paid", "amount_due", "amount_total")
TEXT_FIELDS = ("client_reference_id", "status", "currency", "invoice", "subscription")


class InvalidStripeEvent(ServiceError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "validation_error"
    default_detail = "The body is not a well-formed Stripe event."

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors={field: [message]})


class MalformedStripeBody(ServiceError):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "malformed_request"
    default_detail = "The body is not JSON that can be read."


def _names(types: tuple[type, ...]) -> str:
    words = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object",
             list: "a list"}  # fmt: skip
    return " or ".join(words[kind] for kind in types)


def _name(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _field(
    node: dict[str, Any], key: str, path: str, types: tuple[type, ...], *, required: bool = False
) -> Any:
    """The value at `node[key]` if it is one of `types` (or null, unless required)."""
    value = node.get(key)
    field = _name(path, key)
    if value is None:
        if required:
            raise InvalidStripeEvent(field, "This field is required.")
        return None
    # bool is an int in Python; Stripe never sends one for a number.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise InvalidStripeEvent(field, f"Must be {_names(types)}.")
    if isinstance(value, str) and not value and required:
        raise InvalidStripeEvent(field, "Must not be empty.")
    return value


def _bounded(node: dict[str, Any], key: str, path: str, maximum: int) -> None:
    value = _field(node, key, path, (int,))
    if value is not None and not 0 <= value <= maximum:
        raise InvalidStripeEvent(_name(path, key), f"Must be between 0 and {maximum}.")


def _metadata(node: dict[str, Any], path: str) -> None:
    metadata = _field(node, "metadata", path, (dict,))
    if metadata is not None:
        _field(metadata, "user_id", f"{path}.metadata", (str,))


def _check_object(obj: dict[str, Any]) -> None:
    """The fields of a subscription, invoice or checkout session that we read."""
    path = "data.object"
    _field(obj, "id", path, (str,), required=True)
    for key in TEXT_FIELDS:
        _field(obj, key, path, (str,))
    for key in TIMESTAMP_FIELDS:
        _bounded(obj, key, path, MAX_TIMESTAMP)
    for key in AMOUNT_FIELDS:
        _bounded(obj, key, path, MAX_CENTS)
    _field(obj, "cancel_at_period_end", path, (bool,))
    _metadata(obj, path)
    customer = _field(obj, "customer", path, (str, dict))
    if isinstance(customer, dict):
        _field(customer, "id", f"{path}.customer", (str,), required=True)
    parent = _field(obj, "parent", path, (dict,))
    if parent is not None:
        details = _field(parent, "subscription_details", f"{path}.parent", (dict,))
        if details is not None:
            _metadata(details, f"{path}.parent.subscription_details")
    legacy_details = _field(obj, "subscription_details", path, (dict,))
    if legacy_details is not None:
        _field(legacy_details, "user_id", f"{path}.subscription_details", (str,))
    items = _field(obj, "items", path, (dict,))
    if items is not None:
        item_list = _field(items, "data", f"{path}.items", (list,)) or []
        for index, item in enumerate(item_list):
            item_path = f"{path}.items.data.{index}"
            if not isinstance(item, dict):
                raise InvalidStripeEvent(item_path, "Must be an object.")
            for key in ("current_period_start", "current_period_end"):
                _bounded(item, key, item_path, MAX_TIMESTAMP)
            price = _field(item, "price", item_path, (dict,))
            if price is not None:
                _field(price, "lookup_key", f"{item_path}.price", (str,))


def stripe_event_parse(body: bytes, *, handled_types: frozenset[str]) -> dict[str, Any]:
    """Return the event in a verified webhook body, or raise a 400 error saying what is wrong.

    The envelope (`id`, `type`, `created`, `data.object`) is checked for every event, the
    object's fields for the event types in `handled_types`.
    """
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedStripeBody() from None
    problem = json_problem(event)
    if problem:
        raise InvalidStripeEvent("body", problem)
    if not isinstance(event, dict):
        raise InvalidStripeEvent("body", "Must be an object.")
    _field(event, "id", "", (str,), required=True)
    event_type = _field(event, "type", "", (str,), required=True)
    _field(event, "created", "", (int,), required=True)
    _bounded(event, "created", "", MAX_TIMESTAMP)
    data = _field(event, "data", "", (dict,), required=True)
    obj = _field(data, "object", "data", (dict,), required=True)
    if event_type in handled_types:
        _check_object(obj)
    return event
