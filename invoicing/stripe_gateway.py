"""Every call we make to Stripe goes through here: one client, one base URL, one error mapping.

Calls go to `STRIPE_API_BASE` (tests point it at a local fake). Callers never hold a database
transaction open across a Stripe call: they read, call Stripe, then write, and every call
that creates something carries an idempotency key, so a retry after a failure in between
finds the object made the first time.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import stripe
from django.conf import settings
from rest_framework import status

from core.errors import ServiceError

logger = logging.getLogger(__name__)


class BillingUnavailable(ServiceError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "billing_unavailable"
    default_detail = "Billing is temporarily unavailable; try again shortly."


class BillingProviderError(ServiceError):
    status_code = status.HTTP_502_BAD_GATEWAY
    code = "billing_provider_error"
    default_detail = "Stripe refused the request."


def stripe_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> stripe.StripeClient:
    """A client for our account at STRIPE_API_BASE; 503 billing_unavailable if unconfigured."""
    if not stripe_configured():
        raise BillingUnavailable("Billing is not configured on this server (STRIPE_SECRET_KEY).")
    return stripe.StripeClient(
        api_key=settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )


@contextmanager
def stripe_errors() -> Iterator[None]:
    """Turn Stripe's failures into our error shape: outages 503 (Stripe unreachable, rate
    limiting, or failing on its side with a 5xx), refusals 502."""
    try:
        yield
    except stripe.StripeError as error:
        if stripe_outage(error):
            logger.warning("Stripe unavailable: %s", error)
            raise BillingUnavailable(
                "Stripe cannot be reached right now; try again shortly."
            ) from None
        logger.warning("Stripe refused a request: %s", error)
        raise BillingProviderError(
            f"Stripe refused the request: {error.user_message or 'no reason given'}",
            stripe_code=error.code,
        ) from None


def stripe_outage(error: stripe.StripeError) -> bool:
    """Whether trying again later may succeed: Stripe unreachable, rate limiting, or Stripe
    failing on its side (5xx)."""
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    return isinstance(error, stripe.APIError) and (error.http_status or 500) >= 500


def options(idempotency_key: str | None = None) -> Any:
    """Request options for a call; creating calls pass an idempotency key."""
    return {"idempotency_key": idempotency_key} if idempotency_key else None
