"""A stand-in for Stripe's REST API in tests: a real HTTP server that speaks enough of /v1.

`StripeFake` serves form-encoded Stripe requests from a local HTTP server in a daemon thread,
so the stripe SDK and dj-stripe talk to it exactly as they talk to api.stripe.com: point the
SDK at `fake.base_url` (`stripe.api_base = ...`, or `StripeClient(..., base_addresses={"api":
...})`). dj-stripe uses the SDK's global `stripe.api_base`; it copies `STRIPE_API_HOST` into it
only once, when `djstripe.settings` is imported, so tests must set `stripe.api_base` themselves
(e.g. `monkeypatch.setattr(stripe, "api_base", fake.base_url)`).

What it serves (all in test mode, one account `fake.account_id`):

- `GET /v1/account`
- customers: `POST /v1/customers`, `GET /v1/customers`, `GET|POST|DELETE /v1/customers/{id}`
- prices and products, seeded from `SEEDED_PRICES`: `GET /v1/prices` (filters `lookup_keys`,
  `product`, `active`, `type`, `currency`), `GET /v1/prices/{id}`, `GET /v1/products`,
  `GET /v1/products/{id}`, `GET /v1/products/{id}/features` (always empty)
- `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
  `GET /v1/checkout/sessions/{id}/line_items`
- `POST /v1/billing_portal/sessions`
- `POST /v1/invoiceitems`, `GET /v1/invoiceitems/{id}`
- subscriptions: `GET /v1/subscriptions`, `GET|POST|DELETE /v1/subscriptions/{id}`,
  `GET /v1/subscription_items/{id}` (`DELETE` of one already cancelled answers 404, as Stripe's)
- invoices: `GET /v1/invoices`, `GET /v1/invoices/{id}`, `GET /v1/invoices/{id}/lines`

Anything else answers 404 with Stripe's "Unrecognized request URL" error (and is recorded, so
a test can see what was asked for). `expand[]` is honoured for ids that the fake knows (and for
`line_items` on checkout sessions, `sources` on customers); other expand paths are ignored.

Requests need `Authorization: Bearer sk_test_...` (or `rk_test_...`; HTTP basic auth with the
key as user name works too), else 401 with Stripe's error body. POSTs honour `Idempotency-Key`
as Stripe does: a repeated key with the same method, path and body replays the first response
(header `Idempotent-Replayed: true`) and creates nothing; the same key with different
parameters answers 400 `idempotency_error`. Only successful (2xx) responses are kept for
replay, and answers forced by `fail_with` never are: the fake models them as failures in front
of the API, so a retry with the same key after `fail_with = None` goes through.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

from tests.local_http import LocalHttpServer

# The API version the fake claims to speak: the installed SDK's own (what it sends and what
# dj-stripe sends, unless STRIPE_API_VERSION is set).
API_VERSION: str = stripe.api_version
ACCOUNT_ID = "acct_1A1ZapFakeAccount0"
# Prices the fake starts with: lookup key -> (product key, product name, unit amount, interval).
SEEDED_PRICES: dict[str, tuple[str, str, int, str]] = {
    "a1zap_pro_month": ("pro", "A1Zap Pro", 2999, "month"),
    "a1zap_pro_year": ("pro", "A1Zap Pro", 29990, "year"),
    "a1zap_enterprise_month": ("enterprise", "A1Zap Enterprise", 9999, "month"),
    "a1zap_enterprise_year": ("enterprise", "A1Zap Enterprise", 99990, "year"),
}
CHECKOUT_URL = "https://checkout.stripe.test/c/pay/"
PORTAL_URL = "https://billing.stripe.test/p/session/"
DAY = 86_400
_KEY_RE = re.compile(r"^(sk|rk)_test_[A-Za-z0-9]+$")
_ALPHANUMERIC = string.ascii_letters + string.digits
_ERROR_TYPES: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (simulated by the Stripe fake)."),
    401: ("invalid_request_error", None, "Invalid API Key provided: sk_test_****fake"),
    402: ("card_error", "card_declined", "Your card was declined."),
    403: ("invalid_request_error", "secret_key_required", "Forbidden (simulated)."),
    404: ("invalid_request_error", "resource_missing", "No such object (simulated)."),
    409: ("idempotency_error", "lock_timeout", "Conflict (simulated)."),
    429: ("invalid_request_error", "rate_limit", "Too many requests hit the API too quickly."),
}


def new_id(prefix: str, length: int = 24) -> str:
    """Return a fresh Stripe-style id such as `cus_Qx3...`."""
    return prefix + "_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """Return a `Stripe-Signature` header value for `payload`: `t=<unix>,v1=<hex>`.

    The v1 scheme is the hex HMAC-SHA256 of `"<t>.<payload>"` keyed with the webhook secret.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# --- form decoding ---------------------------------------------------------------------------


class _Indexed(dict[str, Any]):
    """A node addressed by `[0]` / `[]` segments: becomes a list when decoding ends."""


_SEGMENT_RE = re.compile(r"\[([^\[\]]*)\]")


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn Stripe's bracket notation into nested data.

    `line_items[0][price]=p&metadata[user_id]=7&lookup_keys[]=a` becomes
    `{"line_items": [{"price": "p"}], "metadata": {"user_id": "7"}, "lookup_keys": ["a"]}`.
    Every leaf stays the string that was sent (`"true"`, `"2999"`, ...).
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head] + (_SEGMENT_RE.findall("[" + rest) if rest else [])
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            if part == "" and isinstance(node, _Indexed):
                part = str(len(node))
            if i == len(parts) - 1:
                node[part] = value
                break
            child = node.get(part)
            if not isinstance(child, dict):
                nxt = parts[i + 1]
                child = _Indexed() if nxt == "" or nxt.isdigit() else {}
                node[part] = child
            node = child
    return _finish(root)


def _finish(node: Any) -> Any:
    if isinstance(node, _Indexed):
        return [_finish(node[k]) for k in sorted(node, key=lambda k: int(k) if k.isdigit() else 0)]
    if isinstance(node, dict):
        return {k: _finish(v) for k, v in node.items()}
    return node


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def _to_int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeFakeError(
            400, f"Invalid integer: {value}", param=param, code="parameter_invalid_integer"
        ) from None


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


# --- recording -------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the fake received.

    `params` is the decoded request: query string and form body merged into NESTED data
    (lists for `[0]`/`[]`, dicts for `[name]`, strings at the leaves). `pairs` keeps the flat
    `(key, value)` pairs as sent, e.g. `("line_items[0][price]", "price_...")`. `headers`
    keeps the header names as sent; use `header()` for a case-insensitive look-up.
    `status` is what the fake answered (None while being handled, or when `down`).
    """

    method: str
    path: str
    query: str
    params: dict[str, Any]
    pairs: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes = b""
    status: int | None = None
    response: dict[str, Any] | None = None
    replayed: bool = False

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @property
    def idempotency_key(self) -> str | None:
        return self.header("Idempotency-Key")

    @property
    def api_key(self) -> str | None:
        return _api_key_from(self.header("Authorization"))

    @property
    def stripe_version(self) -> str | None:
        return self.header("Stripe-Version")

    @property
    def stripe_account(self) -> str | None:
        return self.header("Stripe-Account")

    @property
    def route(self) -> str:
        """`"<METHOD> <path>"`, e.g. `"GET /v1/customers/cus_123"`."""
        return f"{self.method} {self.path}"


def _api_key_from(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials).decode()
        except ValueError:
            return None
        return decoded.partition(":")[0] or None
    return None


class StripeFakeError(Exception):
    """An error answer in Stripe's shape: `{"error": {"type", "code", "message", "param"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code is not None:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param is not None:
            self.body["param"] = param
        self.body.update(extra)


def _missing(kind: str, id_: str, param: str = "id") -> StripeFakeError:
    return StripeFakeError(404, f"No such {kind}: '{id_}'", code="resource_missing", param=param)


def _required(param: str) -> StripeFakeError:
    return StripeFakeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


@dataclass
class _Stored:
    fingerprint: tuple[str, str, bytes]
    status: int
    body: dict[str, Any]


_Handler = Callable[[re.Match[str], RecordedRequest], tuple[int, dict[str, Any]]]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: _Handler = field(repr=False)


# --- the fake --------------------------------------------------------------------------------


class StripeFake(LocalHttpServer):
    """Stripe's /v1 API for one test-mode account, served over real HTTP on 127.0.0.1.

    Attributes tests use:
    - `requests`: every `RecordedRequest` received, oldest first.
    - `objects`: everything the fake knows, by Stripe object type, then id:
      `objects["customer"]`, `["checkout.session"]`, `["billing_portal.session"]`,
      `["invoiceitem"]`, `["subscription"]`, `["invoice"]`, `["price"]`, `["product"]`.
    - `account`: the `GET /v1/account` object; `account_id` its id.
    - `fail_with`: an HTTP status; while set, every request (or only those whose route starts
      with `fail_match`, e.g. `"POST /v1/checkout/sessions"`) is answered with it and a Stripe
      error body (402 -> card_error/card_declined, 5xx -> api_error, ...). `fail_error`
      overrides fields of that error body. 5xx answers carry `Stripe-Should-Retry: false` (as
      Stripe's usually do) unless `fail_should_retry` is True, so the SDK does not retry them.
    - `down`: while True the server reads each request and closes the connection without an
      answer (the SDK raises `stripe.APIConnectionError`, after its own retries).
    - `accepted_keys`: None (any `sk_test_`/`rk_test_` key) or the set of keys accepted.
    - `answer_delay`: seconds to wait, after a request is handled (its objects made), before
      the answer is sent, for requests whose route starts with `answer_delay_match` (all if
      None): a caller killed meanwhile never learns what Stripe did.
    """

    thread_name = "stripe-fake"

    def __init__(self) -> None:
        self.account_id = ACCOUNT_ID
        self.api_version = API_VERSION
        self.fail_with: int | None = None
        self.fail_match: str | None = None
        self.fail_error: dict[str, Any] | None = None
        self.fail_should_retry = False
        self.down = False
        self.accepted_keys: set[str] | None = None
        self.answer_delay = 0.0
        self.answer_delay_match: str | None = None
        self._answers_released = threading.Event()
        self.requests: list[RecordedRequest] = []
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.account: dict[str, Any] = {}
        self._idempotency: dict[str, _Stored] = {}
        self._line_items: dict[str, list[dict[str, Any]]] = {}
        self._subscription_metadata: dict[str, dict[str, str]] = {}
        self._lock = threading.RLock()
        super().__init__()
        self._routes = self._build_routes()
        self.reset()

    # --- server lifecycle ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every request, object and idempotency key; re-seed prices; clear failures."""
        with self._lock:
            self.fail_with = None
            self.fail_match = None
            self.fail_error = None
            self.fail_should_retry = False
            self.down = False
            self.accepted_keys = None
            self.answer_delay = 0.0
            self.answer_delay_match = None
            # Answers still held back from an earlier test go out now.
            self._answers_released.set()
            self._answers_released = threading.Event()
            self.requests = []
            self._idempotency = {}
            self._line_items = {}
            self._subscription_metadata = {}
            self.objects = {
                kind: {}
                for kind in (
                    "customer",
                    "price",
                    "product",
                    "checkout.session",
                    "billing_portal.session",
                    "invoiceitem",
                    "subscription",
                    "invoice",
                )
            }
            self._created = int(time.time()) - 30 * DAY
            self.account = self._account()
            self._seed_prices()

    # --- lookups for tests ---------------------------------------------------------------------

    @property
    def prices(self) -> dict[str, dict[str, Any]]:
        """Return the known prices by lookup key."""
        return {p["lookup_key"]: p for p in self.objects["price"].values() if p.get("lookup_key")}

    def price_id(self, lookup_key: str) -> str:
        return str(self.prices[lookup_key]["id"])

    def get(self, id_: str) -> dict[str, Any] | None:
        """Return a copy of the object with this id, whatever its type, or None."""
        with self._lock:
            found = self._find(id_)
            return copy.deepcopy(found) if found is not None else None

    def register(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store (or replace) an object by its `object` type and `id`; return a copy."""
        with self._lock:
            self.objects.setdefault(obj["object"], {})[obj["id"]] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def requests_to(
        self, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        """Return the recorded requests with this method and path (a prefix ending in `*`
        matches every path that starts with it)."""

        def matches(r: RecordedRequest) -> bool:
            if method is not None and r.method != method.upper():
                return False
            if path is None:
                return True
            if path.endswith("*"):
                return r.path.startswith(path[:-1])
            return r.path == path

        with self._lock:
            return [r for r in self.requests if matches(r)]

    @property
    def routes_called(self) -> list[str]:
        """Return `"<METHOD> <path>"` of every request, oldest first."""
        with self._lock:
            return [r.route for r in self.requests]

    def created(self, kind: str) -> list[dict[str, Any]]:
        """Return copies of the objects of a type (e.g. "invoiceitem"), oldest first."""
        with self._lock:
            return [copy.deepcopy(o) for o in self.objects.get(kind, {}).values()]

    # --- object builders -----------------------------------------------------------------------

    def customer(
        self,
        id: str | None = None,
        *,
        email: str | None = "customer@example.com",
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Build, register and return a Customer."""
        obj = self._customer_object(
            id or new_id("cus", 14), email=email, name=name, metadata=metadata, created=created
        )
        return self.register(obj)

    def subscription(
        self,
        id: str | None = None,
        *,
        customer: str | None = None,
        lookup_key: str = "a1zap_pro_month",
        status: str = "active",
        period_start: int | None = None,
        period_end: int | None = None,
        metadata: dict[str, str] | None = None,
        cancel_at_period_end: bool = False,
        canceled_at: int | None = None,
        quantity: int = 1,
        latest_invoice: str | None = None,
        created: int | None = None,
        item_id: str | None = None,
    ) -> dict[str, Any]:
        """Build, register and return a Subscription in the current API's shape.

        `current_period_start`/`_end` live on `items.data[0]` (where the API has them since
        2025-03-31) and also on the subscription itself (where dj-stripe and older readers look).
        An unknown `customer` is registered as a new Customer (a new one if None). Building
        again with the same `id` replaces the stored subscription (keeping its item id).
        """
        with self._lock:
            price = self._price_by_lookup_key(lookup_key)
            customer_id = self._ensure_customer(customer)
            sub_id = id or new_id("sub", 24)
            previous = self.objects["subscription"].get(sub_id)
            now = int(time.time())
            start = period_start if period_start is not None else now
            end = period_end if period_end is not None else _period_end(start, price)
            created_at = (
                created if created is not None else (previous["created"] if previous else start)
            )
            if item_id is None and previous:
                item_id = previous["items"]["data"][0]["id"]
            item: dict[str, Any] = {
                "id": item_id or new_id("si", 14),
                "object": "subscription_item",
                "billing_thresholds": None,
                "created": created_at,
                "current_period_end": end,
                "current_period_start": start,
                "discounts": [],
                "metadata": {},
                "plan": _plan_from_price(price),
                "price": copy.deepcopy(price),
                "quantity": quantity,
                "subscription": sub_id,
                "tax_rates": [],
            }
            ended_at = None
            if status in ("canceled", "incomplete_expired"):
                canceled_at = canceled_at if canceled_at is not None else now
                ended_at = canceled_at
            obj: dict[str, Any] = {
                "id": sub_id,
                "object": "subscription",
                "application": None,
                "application_fee_percent": None,
                "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
                "billing_cycle_anchor": start,
                "billing_cycle_anchor_config": None,
                "billing_mode": {"flexible": None, "type": "classic"},
                "billing_thresholds": None,
                "cancel_at": end if cancel_at_period_end else None,
                "cancel_at_period_end": cancel_at_period_end,
                "canceled_at": canceled_at,
                "cancellation_details": {
                    "comment": None,
                    "feedback": None,
                    "reason": "cancellation_requested" if canceled_at else None,
                },
                "collection_method": "charge_automatically",
                "created": created_at,
                "currency": price["currency"],
                "current_period_end": end,
                "current_period_start": start,
                "customer": customer_id,
                "days_until_due": None,
                "default_payment_method": None,
                "default_source": None,
                "default_tax_rates": [],
                "description": None,
                "discounts": [],
                "ended_at": ended_at,
                "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
                "items": {
                    "object": "list",
                    "data": [item],
                    "has_more": False,
                    "total_count": 1,
                    "url": f"/v1/subscription_items?subscription={sub_id}",
                },
                "latest_invoice": latest_invoice,
                "livemode": False,
                "metadata": dict(metadata or {}),
                "next_pending_invoice_item_invoice": None,
                "on_behalf_of": None,
                "pause_collection": None,
                "payment_settings": {
                    "payment_method_options": None,
                    "payment_method_types": None,
                    "save_default_payment_method": "off",
                },
                "pending_invoice_item_interval": None,
                "pending_setup_intent": None,
                "pending_update": None,
                "schedule": None,
                "start_date": created_at,
                "status": status,
                "test_clock": None,
                "transfer_data": None,
                "trial_end": None,
                "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
                "trial_start": None,
            }
            return self.register(obj)

    def invoice(
        self,
        id: str | None = None,
        *,
        customer: str | None = None,
        subscription: str | None = None,
        lookup_key: str | None = None,
        status: str = "paid",
        amount_due: int | None = None,
        amount_paid: int | None = None,
        currency: str = "usd",
        billing_reason: str | None = None,
        period_start: int | None = None,
        period_end: int | None = None,
        metadata: dict[str, str] | None = None,
        attempt_count: int | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Build, register and return an Invoice in the current API's shape.

        Since 2025-03-31 an invoice names its subscription in
        `parent.subscription_details.subscription` (no top-level `subscription`), its line in
        `lines.data[0].parent.subscription_item_details`. With a known `subscription`, the
        customer, price and period default to the subscription's. `status="paid"` pays it in
        full; `"open"` (what `invoice.payment_failed` carries) leaves it unpaid, attempted once,
        with a next attempt scheduled.
        """
        with self._lock:
            sub = self.objects["subscription"].get(subscription) if subscription else None
            item = sub["items"]["data"][0] if sub else None
            if lookup_key is not None:
                price: dict[str, Any] | None = self._price_by_lookup_key(lookup_key)
            else:
                price = item["price"] if item else None
            if customer is None and sub is not None:
                customer = sub["customer"]
            customer_id = self._ensure_customer(customer)
            cust = self.objects["customer"][customer_id]
            now = int(time.time())
            start = (
                period_start
                if period_start is not None
                else (item["current_period_start"] if item else now)
            )
            end = (
                period_end
                if period_end is not None
                else (item["current_period_end"] if item else now)
            )
            quantity = item["quantity"] if item else 1
            due = (
                amount_due
                if amount_due is not None
                else (price["unit_amount"] * quantity if price else 0)
            )
            paid = amount_paid if amount_paid is not None else (due if status == "paid" else 0)
            inv_id = id or new_id("in", 24)
            created_at = created if created is not None else now
            line: dict[str, Any] = {
                "id": new_id("il", 24),
                "object": "line_item",
                "amount": due,
                "currency": currency,
                "description": _line_description(price, quantity) if price else "Invoice item",
                "discount_amounts": [],
                "discountable": True,
                "discounts": [],
                "invoice": inv_id,
                "livemode": False,
                "metadata": {},
                "parent": None,
                "period": {"end": end, "start": start},
                "pretax_credit_amounts": [],
                "pricing": None,
                "quantity": quantity,
                "taxes": [],
            }
            if price is not None:
                line["pricing"] = {
                    "price_details": {"price": price["id"], "product": price["product"]},
                    "type": "price_details",
                    "unit_amount_decimal": price["unit_amount_decimal"],
                }
            if subscription is not None:
                line["parent"] = {
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": subscription,
                        "subscription_item": item["id"] if item else None,
                    },
                    "type": "subscription_item_details",
                }
            parent = None
            if subscription is not None:
                parent = {
                    "quote_details": None,
                    "subscription_details": {
                        "metadata": dict(sub["metadata"]) if sub else {},
                        "subscription": subscription,
                    },
                    "type": "subscription_details",
                }
            paid_at = created_at if status == "paid" else None
            obj: dict[str, Any] = {
                "id": inv_id,
                "object": "invoice",
                "account_country": "US",
                "account_name": "A1Zap (test)",
                "account_tax_ids": None,
                "amount_due": due,
                "amount_overpaid": 0,
                "amount_paid": paid,
                "amount_remaining": max(due - paid, 0),
                "amount_shipping": 0,
                "application": None,
                "attempt_count": attempt_count
                if attempt_count is not None
                else (0 if status == "draft" else 1),
                "attempted": status not in ("draft",),
                "auto_advance": status == "open",
                "automatic_tax": {
                    "disabled_reason": None,
                    "enabled": False,
                    "liability": None,
                    "provider": None,
                    "status": None,
                },
                "automatically_finalizes_at": None,
                "billing_reason": billing_reason
                or ("subscription_create" if subscription else "manual"),
                "collection_method": "charge_automatically",
                "confirmation_secret": None,
                "created": created_at,
                "currency": currency,
                "custom_fields": None,
                "customer": customer_id,
                "customer_address": None,
                "customer_email": cust.get("email"),
                "customer_name": cust.get("name"),
                "customer_phone": None,
                "customer_shipping": None,
                "customer_tax_exempt": "none",
                "customer_tax_ids": [],
                "default_payment_method": None,
                "default_source": None,
                "default_tax_rates": [],
                "description": None,
                "discounts": [],
                "due_date": None,
                "effective_at": None if status == "draft" else created_at,
                "ending_balance": None if status == "draft" else 0,
                "footer": None,
                "from_invoice": None,
                "hosted_invoice_url": f"https://invoice.stripe.test/i/{inv_id}",
                "invoice_pdf": f"https://pay.stripe.test/invoice/{inv_id}/pdf",
                "issuer": {"type": "self"},
                "last_finalization_error": None,
                "latest_revision": None,
                "lines": {
                    "object": "list",
                    "data": [line],
                    "has_more": False,
                    "total_count": 1,
                    "url": f"/v1/invoices/{inv_id}/lines",
                },
                "livemode": False,
                "metadata": dict(metadata or {}),
                "next_payment_attempt": created_at + 3 * DAY if status == "open" else None,
                "number": f"FAKE-{secrets.randbelow(10**6):06d}",
                "on_behalf_of": None,
                "parent": parent,
                "payment_settings": {
                    "default_mandate": None,
                    "payment_method_options": None,
                    "payment_method_types": None,
                },
                "period_end": end,
                "period_start": start,
                "post_payment_credit_notes_amount": 0,
                "pre_payment_credit_notes_amount": 0,
                "receipt_number": None,
                "rendering": None,
                "shipping_cost": None,
                "shipping_details": None,
                "starting_balance": 0,
                "statement_descriptor": None,
                "status": status,
                "status_transitions": {
                    "finalized_at": None if status == "draft" else created_at,
                    "marked_uncollectible_at": None,
                    "paid_at": paid_at,
                    "voided_at": None,
                },
                "subtotal": due,
                "subtotal_excluding_tax": due,
                "test_clock": None,
                "total": due,
                "total_discount_amounts": [],
                "total_excluding_tax": due,
                "total_pretax_credit_amounts": [],
                "total_taxes": [],
                "webhooks_delivered_at": created_at,
            }
            return self.register(obj)

    def checkout_session(
        self,
        id: str | None = None,
        *,
        customer: str | None = None,
        subscription: str | None = None,
        invoice: str | None = None,
        mode: str = "subscription",
        status: str = "complete",
        payment_status: str | None = None,
        lookup_key: str = "a1zap_pro_month",
        quantity: int = 1,
        metadata: dict[str, str] | None = None,
        client_reference_id: str | None = None,
        customer_email: str | None = None,
        success_url: str = "https://app.a1zap.test/billing/success",
        cancel_url: str | None = "https://app.a1zap.test/billing/cancel",
        created: int | None = None,
    ) -> dict[str, Any]:
        """Build, register and return a Checkout Session (complete and paid by default).

        A complete session has its `customer` (registered if unknown) and, in subscription
        mode, the `subscription` (pass the id of one built with `subscription()`); an open one
        has a checkout `url`.
        """
        with self._lock:
            price = self._price_by_lookup_key(lookup_key)
            customer_id = (
                self._ensure_customer(customer)
                if (customer is not None or status == "complete")
                else None
            )
            obj = self._session_object(
                id or new_id("cs_test", 58),
                mode=mode,
                customer=customer_id,
                customer_email=customer_email,
                line_items=[(price, quantity)],
                metadata=metadata,
                client_reference_id=client_reference_id,
                success_url=success_url,
                cancel_url=cancel_url,
                created=created,
            )
            if status != "open":
                obj["status"] = status
                obj["url"] = None
                obj["payment_status"] = payment_status or (
                    "paid" if status == "complete" else "unpaid"
                )
                obj["subscription"] = subscription
                obj["invoice"] = invoice
                if customer_id:
                    cust = self.objects["customer"][customer_id]
                    obj["customer_details"] = _customer_details(cust)
            elif payment_status:
                obj["payment_status"] = payment_status
            return self.register(obj)

    def complete_checkout_session(
        self, session_id: str, *, status: str = "active", period_start: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """Do what Stripe does when the customer pays an open subscription-mode session.

        Creates the customer (if the session had none), the subscription (with the session's
        `subscription_data[metadata]`) and its paid first invoice, marks the session complete
        and returns `{"session": ..., "subscription": ..., "invoice": ...}` (copies).
        """
        with self._lock:
            session = self.objects["checkout.session"].get(session_id)
            if session is None:
                raise KeyError(session_id)
            customer_id = self._ensure_customer(
                session["customer"], email=session.get("customer_email")
            )
            first_item = self._line_items[session_id][0]
            price, quantity = first_item["price"], first_item["quantity"]
            sub_metadata = dict(self._subscription_metadata.get(session_id, {}))
            sub = self.subscription(
                customer=customer_id,
                lookup_key=price["lookup_key"],
                status=status,
                period_start=period_start,
                metadata=sub_metadata,
                quantity=quantity,
            )
            inv = self.invoice(subscription=sub["id"], status="paid")
            sub = self.subscription(
                sub["id"],
                customer=customer_id,
                lookup_key=price["lookup_key"],
                status=status,
                period_start=sub["current_period_start"],
                period_end=sub["current_period_end"],
                metadata=sub_metadata,
                quantity=quantity,
                latest_invoice=inv["id"],
            )
            session.update(
                status="complete",
                payment_status="paid",
                url=None,
                customer=customer_id,
                customer_details=_customer_details(self.objects["customer"][customer_id]),
                subscription=sub["id"],
                invoice=inv["id"],
            )
            return {
                "session": self._public(session),
                "subscription": sub,
                "invoice": inv,
            }

    def event(
        self,
        type: str,
        obj: dict[str, Any],
        *,
        id: str | None = None,
        created: int | None = None,
        previous_attributes: dict[str, Any] | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Return a Stripe Event wrapping `obj` (a copy), as a webhook would deliver it."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        return {
            "id": id or new_id("evt", 24),
            "object": "event",
            "api_version": self.api_version,
            "context": None,
            "created": created if created is not None else int(time.time()),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": type,
        }

    sign = staticmethod(sign)

    # --- object shapes -------------------------------------------------------------------------

    def _account(self) -> dict[str, Any]:
        return {
            "id": self.account_id,
            "object": "account",
            "business_profile": {
                "annual_revenue": None,
                "estimated_worker_count": None,
                "mcc": None,
                "name": "A1Zap (test)",
                "product_description": None,
                "support_address": None,
                "support_email": None,
                "support_phone": None,
                "support_url": None,
                "url": "https://a1zap.test",
            },
            "business_type": "company",
            "capabilities": {"card_payments": "active", "transfers": "active"},
            "charges_enabled": True,
            "controller": {"type": "account"},
            "country": "US",
            "created": self._created,
            "default_currency": "usd",
            "details_submitted": True,
            "email": "billing@a1zap.test",
            "metadata": {},
            "payouts_enabled": True,
            "settings": {
                "branding": {
                    "icon": None,
                    "logo": None,
                    "primary_color": None,
                    "secondary_color": None,
                },
                "dashboard": {"display_name": "A1Zap", "timezone": "Etc/UTC"},
            },
            "type": "standard",
        }

    def _seed_prices(self) -> None:
        products: dict[str, dict[str, Any]] = {}
        for lookup_key, (product_key, name, amount, interval) in SEEDED_PRICES.items():
            product_id = f"prod_A1Zap{product_key.capitalize()}"
            price_id = "price_" + "".join(part.capitalize() for part in lookup_key.split("_"))
            if product_id not in products:
                products[product_id] = {
                    "id": product_id,
                    "object": "product",
                    "active": True,
                    "attributes": [],
                    "created": self._created,
                    "default_price": price_id,
                    "description": None,
                    "images": [],
                    "livemode": False,
                    "marketing_features": [],
                    "metadata": {"plan": product_key},
                    "name": name,
                    "package_dimensions": None,
                    "shippable": None,
                    "statement_descriptor": None,
                    "tax_code": None,
                    "type": "service",
                    "unit_label": None,
                    "updated": self._created,
                    "url": None,
                }
            self.objects["price"][price_id] = {
                "id": price_id,
                "object": "price",
                "active": True,
                "billing_scheme": "per_unit",
                "created": self._created,
                "currency": "usd",
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": lookup_key,
                "metadata": {"plan": product_key},
                "nickname": f"{name} ({interval}ly)",
                "product": product_id,
                "recurring": {
                    "interval": interval,
                    "interval_count": 1,
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                },
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "recurring",
                "unit_amount": amount,
                "unit_amount_decimal": str(amount),
            }
        self.objects["product"].update(products)

    def _customer_object(
        self,
        id_: str,
        *,
        email: str | None,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        description: str | None = None,
        phone: str | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        return {
            "id": id_,
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": created if created is not None else int(time.time()),
            "currency": None,
            "customer_account": None,
            "default_source": None,
            "delinquent": False,
            "description": description,
            "discount": None,
            "email": email,
            "invoice_prefix": id_[-8:].upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(metadata or {}),
            "name": name,
            "next_invoice_sequence": 1,
            "phone": phone,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }

    def _session_object(
        self,
        id_: str,
        *,
        mode: str,
        customer: str | None,
        customer_email: str | None,
        line_items: list[tuple[dict[str, Any], int]],
        metadata: dict[str, str] | None,
        client_reference_id: str | None,
        success_url: str | None,
        cancel_url: str | None,
        created: int | None = None,
        subscription_metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        now = created if created is not None else int(time.time())
        items = []
        for price, quantity in line_items:
            amount = price["unit_amount"] * quantity
            items.append(
                {
                    "id": new_id("li", 24),
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": amount,
                    "amount_tax": 0,
                    "amount_total": amount,
                    "currency": price["currency"],
                    "description": price["nickname"] or price["product"],
                    "discounts": [],
                    "price": copy.deepcopy(price),
                    "quantity": quantity,
                }
            )
        self._line_items[id_] = items
        self._subscription_metadata[id_] = dict(subscription_metadata or {})
        total = sum(i["amount_total"] for i in items)
        currency = items[0]["currency"] if items else "usd"
        return {
            "id": id_,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": total,
            "amount_total": total,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_address_collection": None,
            "cancel_url": cancel_url,
            "client_reference_id": client_reference_id,
            "client_secret": None,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": now,
            "currency": currency,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": customer,
            "customer_creation": None if customer else "always",
            "customer_details": None,
            "customer_email": customer_email,
            "discounts": [],
            "expires_at": now + DAY,
            "invoice": None,
            "invoice_creation": None,
            "livemode": False,
            "locale": None,
            "metadata": dict(metadata or {}),
            "mode": mode,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "always",
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": CHECKOUT_URL + id_,
            "wallet_options": None,
        }

    # --- helpers -------------------------------------------------------------------------------

    def _find(self, id_: str) -> dict[str, Any] | None:
        if id_ == self.account_id:
            return self.account
        for store in self.objects.values():
            if id_ in store:
                return store[id_]
        return None

    def _price_by_lookup_key(self, lookup_key: str) -> dict[str, Any]:
        for price in self.objects["price"].values():
            if price.get("lookup_key") == lookup_key:
                return price
        raise KeyError(f"The Stripe fake has no price with lookup key {lookup_key!r}.")

    def _ensure_customer(self, customer: str | None, *, email: str | None = None) -> str:
        if customer is not None and customer in self.objects["customer"]:
            return customer
        obj = self._customer_object(
            customer or new_id("cus", 14), email=email or "customer@example.com"
        )
        self.objects["customer"][obj["id"]] = obj
        return str(obj["id"])

    def _public(self, obj: dict[str, Any], expand: list[str] | None = None) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
        for path in expand or []:
            self._expand(out, path.split("."))
        return out

    def _expand(self, node: Any, parts: list[str]) -> None:
        if isinstance(node, list):
            for element in node:
                self._expand(element, parts)
            return
        if not isinstance(node, dict) or not parts:
            return
        key, rest = parts[0], parts[1:]
        if key == "data" and node.get("object") == "list":
            self._expand(node["data"], rest)
            return
        if key not in node:
            extra = self._expandable_extra(node, key)
            if extra is None:
                return
            node[key] = extra
        value = node[key]
        if not rest:
            if isinstance(value, str):
                found = self._find(value)
                if found is not None:
                    node[key] = self._public(found)
            elif isinstance(value, list):
                expanded = []
                for v in value:
                    found = self._find(v) if isinstance(v, str) else None
                    expanded.append(self._public(found) if found is not None else v)
                node[key] = expanded
            return
        if isinstance(value, str):
            found = self._find(value)
            if found is None:
                return
            node[key] = value = self._public(found)
        self._expand(value, rest)

    def _expandable_extra(self, node: dict[str, Any], key: str) -> dict[str, Any] | None:
        """Fields Stripe includes only when expanded."""
        if node.get("object") == "checkout.session" and key == "line_items":
            return _list(
                self._line_items.get(node["id"], []),
                f"/v1/checkout/sessions/{node['id']}/line_items",
            )
        if node.get("object") == "customer" and key in ("sources", "tax_ids"):
            return _list([], f"/v1/customers/{node['id']}/{key}")
        if key == "breakdown" and "amount_discount" in node:  # total_details.breakdown
            return {"discounts": [], "taxes": []}
        return None

    # --- routes --------------------------------------------------------------------------------

    def _build_routes(self) -> list[_Route]:
        id_ = r"(?P<id>[A-Za-z0-9_]+)"
        table: list[tuple[str, str, _Handler]] = [
            ("GET", r"/v1/account", self._get_account),
            ("POST", r"/v1/customers", self._create_customer),
            ("GET", r"/v1/customers", self._list_customers),
            ("GET", rf"/v1/customers/{id_}", self._retrieve("customer")),
            ("POST", rf"/v1/customers/{id_}", self._update_customer),
            ("DELETE", rf"/v1/customers/{id_}", self._delete_customer),
            ("GET", r"/v1/prices", self._list_prices),
            ("GET", rf"/v1/prices/{id_}", self._retrieve("price")),
            ("GET", r"/v1/products", self._list_products),
            ("GET", rf"/v1/products/{id_}", self._retrieve("product")),
            ("GET", rf"/v1/products/{id_}/features", self._list_product_features),
            ("POST", r"/v1/checkout/sessions", self._create_checkout_session),
            ("GET", rf"/v1/checkout/sessions/{id_}", self._retrieve("checkout.session")),
            ("GET", rf"/v1/checkout/sessions/{id_}/line_items", self._session_line_items),
            ("POST", r"/v1/billing_portal/sessions", self._create_portal_session),
            ("POST", r"/v1/invoiceitems", self._create_invoice_item),
            ("GET", rf"/v1/invoiceitems/{id_}", self._retrieve("invoiceitem")),
            ("GET", r"/v1/subscriptions", self._list_subscriptions),
            ("GET", rf"/v1/subscriptions/{id_}", self._retrieve("subscription")),
            ("POST", rf"/v1/subscriptions/{id_}", self._update_subscription),
            ("DELETE", rf"/v1/subscriptions/{id_}", self._cancel_subscription),
            ("GET", rf"/v1/subscription_items/{id_}", self._get_subscription_item),
            ("GET", r"/v1/invoices", self._list_invoices),
            ("GET", rf"/v1/invoices/{id_}", self._retrieve("invoice")),
            ("GET", rf"/v1/invoices/{id_}/lines", self._invoice_lines),
        ]
        return [_Route(m, re.compile(p + "$"), h) for m, p, h in table]

    def _retrieve(self, kind: str) -> _Handler:
        def handler(m: re.Match[str], req: RecordedRequest) -> tuple[int, dict[str, Any]]:
            obj = self.objects[kind].get(m["id"])
            if obj is None:
                raise _missing(kind, m["id"])
            return 200, self._public(obj, _expand_of(req))

        return handler

    def _get_account(self, m: re.Match[str], req: RecordedRequest) -> tuple[int, dict[str, Any]]:
        return 200, self._public(self.account, _expand_of(req))

    def _create_customer(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        p = req.params
        obj = self._customer_object(
            new_id("cus", 14),
            email=p.get("email"),
            name=p.get("name"),
            metadata=_metadata(p),
            description=p.get("description"),
            phone=p.get("phone"),
        )
        self.objects["customer"][obj["id"]] = obj
        return 200, self._public(obj, _expand_of(req))

    def _update_customer(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        obj = self.objects["customer"].get(m["id"])
        if obj is None:
            raise _missing("customer", m["id"])
        p = req.params
        for name in ("email", "name", "description", "phone"):
            if name in p:
                obj[name] = p[name] or None
        if "metadata" in p:
            obj["metadata"] = _merge_metadata(obj["metadata"], p["metadata"])
        return 200, self._public(obj, _expand_of(req))

    def _delete_customer(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        if self.objects["customer"].pop(m["id"], None) is None:
            raise _missing("customer", m["id"])
        return 200, {"id": m["id"], "object": "customer", "deleted": True}

    def _list_customers(self, m: re.Match[str], req: RecordedRequest) -> tuple[int, dict[str, Any]]:
        email = req.params.get("email")
        items = [
            c for c in self.objects["customer"].values() if email is None or c["email"] == email
        ]
        return 200, self._page(items, req, "/v1/customers")

    def _list_prices(self, m: re.Match[str], req: RecordedRequest) -> tuple[int, dict[str, Any]]:
        p = req.params
        lookup_keys = _as_list(p.get("lookup_keys"))
        items = list(self.objects["price"].values())
        if lookup_keys:
            items = [x for x in items if x.get("lookup_key") in lookup_keys]
        for name in ("product", "type", "currency"):
            if name in p:
                items = [x for x in items if x.get(name) == p[name]]
        if "active" in p:
            items = [x for x in items if x["active"] == _truthy(p["active"])]
        return 200, self._page(items, req, "/v1/prices")

    def _list_products(self, m: re.Match[str], req: RecordedRequest) -> tuple[int, dict[str, Any]]:
        items = list(self.objects["product"].values())
        if "active" in req.params:
            items = [x for x in items if x["active"] == _truthy(req.params["active"])]
        return 200, self._page(items, req, "/v1/products")

    def _list_product_features(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        if m["id"] not in self.objects["product"]:
            raise _missing("product", m["id"])
        return 200, _list([], f"/v1/products/{m['id']}/features")

    def _create_checkout_session(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        p = req.params
        mode = p.get("mode")
        if not mode:
            raise _required("mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeFakeError(
                400,
                "Invalid mode: must be one of payment, setup, or subscription",
                param="mode",
                code="parameter_invalid",
            )
        customer = p.get("customer")
        if customer and p.get("customer_email"):
            raise StripeFakeError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        if customer and customer not in self.objects["customer"]:
            raise _missing("customer", customer, param="customer")
        raw_items = _as_list(p.get("line_items"))
        if mode != "setup" and not raw_items:
            raise _required("line_items")
        line_items: list[tuple[dict[str, Any], int]] = []
        for i, raw in enumerate(raw_items):
            if not isinstance(raw, dict) or not raw.get("price"):
                raise _required(f"line_items[{i}][price]")
            price = self.objects["price"].get(raw["price"])
            if price is None:
                raise _missing("price", raw["price"], param=f"line_items[{i}][price]")
            quantity = _to_int(raw.get("quantity", "1"), f"line_items[{i}][quantity]")
            line_items.append((price, quantity))
        if mode == "subscription" and not any(pr["type"] == "recurring" for pr, _ in line_items):
            raise StripeFakeError(
                400,
                "You must provide at least one recurring price in `subscription` mode when "
                "using prices.",
                param="line_items",
            )
        sub_data = p.get("subscription_data") or {}
        obj = self._session_object(
            new_id("cs_test", 58),
            mode=mode,
            customer=customer,
            customer_email=p.get("customer_email"),
            line_items=line_items,
            metadata=_metadata(p),
            client_reference_id=p.get("client_reference_id"),
            success_url=p.get("success_url"),
            cancel_url=p.get("cancel_url"),
            subscription_metadata=sub_data.get("metadata") if isinstance(sub_data, dict) else None,
        )
        if "allow_promotion_codes" in p:
            obj["allow_promotion_codes"] = _truthy(p["allow_promotion_codes"])
        self.objects["checkout.session"][obj["id"]] = obj
        return 200, self._public(obj, _expand_of(req))

    def _session_line_items(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        if m["id"] not in self.objects["checkout.session"]:
            raise _missing("checkout.session", m["id"])
        items = self._line_items.get(m["id"], [])
        return 200, self._page(items, req, f"/v1/checkout/sessions/{m['id']}/line_items")

    def _create_portal_session(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        p = req.params
        customer = p.get("customer")
        if not customer:
            raise _required("customer")
        if customer not in self.objects["customer"]:
            raise _missing("customer", customer, param="customer")
        session_id = new_id("bps", 24)
        obj = {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": p.get("configuration") or "bpc_A1ZapFakeDefaultConfig",
            "created": int(time.time()),
            "customer": customer,
            "flow": p.get("flow_data"),
            "livemode": False,
            "locale": p.get("locale"),
            "on_behalf_of": None,
            "return_url": p.get("return_url"),
            "url": PORTAL_URL + "test_" + secrets.token_urlsafe(24),
        }
        self.objects["billing_portal.session"][session_id] = obj
        return 200, self._public(obj)

    def _create_invoice_item(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        p = req.params
        customer = p.get("customer")
        if not customer:
            raise _required("customer")
        if customer not in self.objects["customer"]:
            raise _missing("customer", customer, param="customer")
        pricing: dict[str, Any] = p["pricing"] if isinstance(p.get("pricing"), dict) else {}
        price_id = p.get("price") or pricing.get("price")
        quantity = _to_int(p.get("quantity", "1"), "quantity")
        price = None
        if price_id:
            price = self.objects["price"].get(price_id)
            if price is None:
                raise _missing("price", price_id, param="price")
            unit = price["unit_amount"]
            currency = price["currency"]
            amount = unit * quantity
        else:
            currency = p.get("currency")
            if "amount" in p:
                amount = _to_int(p["amount"], "amount")
                unit = amount // max(quantity, 1)
            elif "unit_amount_decimal" in p or "unit_amount" in p:
                raw_unit = p.get("unit_amount_decimal", p.get("unit_amount"))
                try:
                    unit = round(float(raw_unit))
                except (TypeError, ValueError):
                    raise StripeFakeError(
                        400, f"Invalid decimal: {raw_unit}", param="unit_amount_decimal"
                    ) from None
                amount = unit * quantity
            else:
                raise _required("amount")
            if not currency:
                raise _required("currency")
        subscription = p.get("subscription")
        if subscription and subscription not in self.objects["subscription"]:
            raise _missing("subscription", subscription, param="subscription")
        now = int(time.time())
        period: dict[str, Any] = p["period"] if isinstance(p.get("period"), dict) else {}
        obj = {
            "id": new_id("ii", 24),
            "object": "invoiceitem",
            "amount": amount,
            "currency": currency,
            "customer": customer,
            "date": now,
            "description": p.get("description"),
            "discountable": True,
            "discounts": [],
            "invoice": p.get("invoice"),
            "livemode": False,
            "metadata": _metadata(p),
            "net_amount": amount,
            "parent": None
            if not subscription
            else {
                "subscription_details": {"subscription": subscription, "subscription_item": None},
                "type": "subscription_details",
            },
            "period": {
                "end": _to_int(period.get("end", now), "period[end]"),
                "start": _to_int(period.get("start", now), "period[start]"),
            },
            "pricing": {
                "price_details": {"price": price["id"], "product": price["product"]}
                if price
                else None,
                "type": "price_details" if price else None,
                "unit_amount_decimal": str(unit),
            },
            "proration": False,
            "quantity": quantity,
            "tax_rates": [],
            "test_clock": None,
        }
        self.objects["invoiceitem"][obj["id"]] = obj
        return 200, self._public(obj, _expand_of(req))

    def _list_subscriptions(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        p = req.params
        items = list(self.objects["subscription"].values())
        if "customer" in p:
            items = [s for s in items if s["customer"] == p["customer"]]
        status = p.get("status")
        if status and status != "all":
            items = [s for s in items if s["status"] == status]
        elif not status:
            items = [s for s in items if s["status"] != "canceled"]
        return 200, self._page(items, req, "/v1/subscriptions")

    def _update_subscription(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        obj = self.objects["subscription"].get(m["id"])
        if obj is None:
            raise _missing("subscription", m["id"])
        p = req.params
        if "cancel_at_period_end" in p:
            obj["cancel_at_period_end"] = _truthy(p["cancel_at_period_end"])
            obj["cancel_at"] = obj["current_period_end"] if obj["cancel_at_period_end"] else None
            obj["canceled_at"] = int(time.time()) if obj["cancel_at_period_end"] else None
        if "metadata" in p:
            obj["metadata"] = _merge_metadata(obj["metadata"], p["metadata"])
        return 200, self._public(obj, _expand_of(req))

    def _cancel_subscription(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        obj = self.objects["subscription"].get(m["id"])
        # Stripe answers "No such subscription" for one already cancelled, though a GET still
        # returns it (stripe/stripe-go#1887); the same idempotency key replays the first answer.
        if obj is None or obj["status"] in ("canceled", "incomplete_expired"):
            raise _missing("subscription", m["id"])
        now = int(time.time())
        obj.update(status="canceled", canceled_at=now, ended_at=now)
        return 200, self._public(obj, _expand_of(req))

    def _get_subscription_item(
        self, m: re.Match[str], req: RecordedRequest
    ) -> tuple[int, dict[str, Any]]:
        for sub in self.objects["subscription"].values():
            for item in sub["items"]["data"]:
                if item["id"] == m["id"]:
                    return 200, self._public(item, _expand_of(req))
        raise _missing("subscription_item", m["id"])

    def _list_invoices(self, m: re.Match[str], req: RecordedRequest) -> tuple[int, dict[str, Any]]:
        p = req.params
        items = list(self.objects["invoice"].values())
        if "customer" in p:
            items = [i for i in items if i["customer"] == p["customer"]]
        if "subscription" in p:
            items = [
                i
                for i in items
                if (i.get("parent") or {}).get("subscription_details", {}).get("subscription")
                == p["subscription"]
            ]
        if "status" in p:
            items = [i for i in items if i["status"] == p["status"]]
        return 200, self._page(items, req, "/v1/invoices")

    def _invoice_lines(self, m: re.Match[str], req: RecordedRequest) -> tuple[int, dict[str, Any]]:
        obj = self.objects["invoice"].get(m["id"])
        if obj is None:
            raise _missing("invoice", m["id"])
        return 200, self._page(obj["lines"]["data"], req, f"/v1/invoices/{m['id']}/lines")

    def _page(self, items: list[dict[str, Any]], req: RecordedRequest, url: str) -> dict[str, Any]:
        """A list page, newest first, honouring `limit` and `starting_after`."""
        ordered = sorted(items, key=lambda o: o.get("created", 0), reverse=True)
        after = req.params.get("starting_after")
        if after:
            ids = [o["id"] for o in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        limit = min(max(_to_int(req.params.get("limit", "10"), "limit"), 1), 100)
        expand = [e.removeprefix("data.") for e in _expand_of(req) if e.startswith("data.")]
        page = [self._public(o, expand) for o in ordered[:limit]]
        return {"object": "list", "data": page, "has_more": len(ordered) > limit, "url": url}

    # --- request handling ----------------------------------------------------------------------

    def _fail_body(self, status: int) -> dict[str, Any]:
        if status >= 500:
            type_, code, message = "api_error", None, "An unknown error occurred (simulated)."
        else:
            type_, code, message = _ERROR_TYPES.get(
                status, ("invalid_request_error", None, f"HTTP {status} (simulated).")
            )
        body: dict[str, Any] = {"type": type_, "message": message}
        if code:
            body["code"] = code
        if status == 402:
            body.update(decline_code="generic_decline", param="")
        body.update(self.fail_error or {})
        return {"error": body}

    def _dispatch(self, req: RecordedRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request: (status, body, extra headers). Called with the lock held."""
        if self.fail_with is not None and (
            self.fail_match is None or req.route.startswith(self.fail_match)
        ):
            headers = {}
            if self.fail_with >= 500 or self.fail_with == 409:
                headers["Stripe-Should-Retry"] = "true" if self.fail_should_retry else "false"
            return self.fail_with, self._fail_body(self.fail_with), headers

        key = req.api_key
        if key is None:
            return (
                401,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "You did not provide an API key. You need to provide your API "
                        "key in the Authorization header, using Bearer auth (e.g. 'Authorization: "
                        "Bearer YOUR_SECRET_KEY').",
                    }
                },
                {},
            )
        if not _KEY_RE.match(key) or (
            self.accepted_keys is not None and key not in self.accepted_keys
        ):
            return (
                401,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "api_key_invalid",
                        "message": f"Invalid API Key provided: {key[:8]}****{key[-4:]}",
                    }
                },
                {},
            )

        idem_key = req.idempotency_key if req.method == "POST" else None
        fingerprint = (req.method, req.path, req.body)
        if idem_key is not None:
            stored = self._idempotency.get(idem_key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    return (
                        400,
                        {
                            "error": {
                                "type": "idempotency_error",
                                "message": "Keys for idempotent requests can only be used with the "
                                "same parameters they were first used with. Try using a key other "
                                f"than '{idem_key}' if you meant to execute a different request.",
                            }
                        },
                        {},
                    )
                req.replayed = True
                return stored.status, copy.deepcopy(stored.body), {"Idempotent-Replayed": "true"}

        for route in self._routes:
            matched = route.pattern.match(req.path)
            if matched is None or route.method != req.method:
                continue
            try:
                status, body = route.handler(matched, req)
            except StripeFakeError as exc:
                return exc.status, {"error": exc.body}, {}
            if idem_key is not None and 200 <= status < 300:
                self._idempotency[idem_key] = _Stored(fingerprint, status, copy.deepcopy(body))
            return status, body, {}

        return (
            404,
            {
                "error": {
                    "type": "invalid_request_error",
                    "message": f"Unrecognized request URL ({req.method}: {req.path}). Please see "
                    "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                }
            },
            {},
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                pairs = parse_qsl(url.query, keep_blank_values=True)
                content_type = self.headers.get("Content-Type", "")
                if body and "json" not in content_type:
                    pairs += parse_qsl(body.decode(), keep_blank_values=True)
                req = RecordedRequest(
                    method=self.command,
                    path=url.path,
                    query=url.query,
                    params=decode_form(pairs),
                    pairs=pairs,
                    headers=dict(self.headers.items()),
                    body=body,
                )
                with fake._lock:
                    fake.requests.append(req)
                    if fake.down:
                        self.close_connection = True
                        return
                    status, answer, extra = fake._dispatch(req)
                    req.status = status
                    req.response = copy.deepcopy(answer)
                    delay = fake.answer_delay
                    if fake.answer_delay_match and not req.route.startswith(
                        fake.answer_delay_match
                    ):
                        delay = 0.0
                    released = fake._answers_released
                if delay:
                    released.wait(delay)
                # The caller may be gone (a test killed it) by the time the answer is ready.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(req, status, answer, extra)

            def _answer(
                self, req: RecordedRequest, status: int, answer: dict[str, Any],
                extra: dict[str, str],
            ) -> None:  # fmt: skip
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", new_id("req", 14))
                self.send_header("Stripe-Version", req.stripe_version or fake.api_version)
                if req.idempotency_key:
                    self.send_header("Idempotency-Key", req.idempotency_key)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # Keep test output clean.

        return Handler


# --- module helpers --------------------------------------------------------------------------


def _list(items: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": copy.deepcopy(items),
        "has_more": False,
        "total_count": len(items),
        "url": url,
    }


def _expand_of(req: RecordedRequest) -> list[str]:
    return [str(e) for e in _as_list(req.params.get("expand"))]


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    value = params.get("metadata")
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v != ""}
    return {}


def _merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe's metadata update: keys merge, an empty value removes a key, `metadata=` clears."""
    if not isinstance(update, dict):
        return {}
    merged = dict(current)
    for k, v in update.items():
        if v == "":
            merged.pop(k, None)
        else:
            merged[k] = str(v)
    return merged


def _period_end(start: int, price: dict[str, Any]) -> int:
    interval = (price.get("recurring") or {}).get("interval", "month")
    return start + {"day": 1, "week": 7, "month": 30, "year": 365}.get(interval, 30) * DAY


def _plan_from_price(price: dict[str, Any]) -> dict[str, Any]:
    recurring = price.get("recurring") or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def _line_description(price: dict[str, Any], quantity: int) -> str:
    amount = price["unit_amount"] / 100
    interval = (price.get("recurring") or {}).get("interval", "month")
    return f"{quantity} \u00d7 {price['nickname']} (at ${amount:,.2f} / {interval})"


def _customer_details(customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": None,
        "business_name": None,
        "email": customer.get("email"),
        "individual_name": None,
        "name": customer.get("name"),
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
