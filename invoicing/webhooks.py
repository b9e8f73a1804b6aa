"""`POST /stripe/webhook/`: Stripe's signed events, verified with STRIPE_WEBHOOK_SECRET."""

import logging

import stripe
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from invoicing.stripe_events import HANDLED_EVENTS
from invoicing.stripe_inbox import stripe_event_store
from invoicing.stripe_payloads import stripe_event_parse

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Verify the signature (300 s tolerance) and the event's shape, store the event and
    answer 200 (`queued`, or `duplicate` for one already applied); a task applies it. Nothing
    is stored for a bad signature (400 `invalid_signature`), a malformed event (400
    `validation_error` / `malformed_request`) or a type we do not handle (200 `ignored`)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return JsonResponse(
            {"code": "webhook_unavailable", "detail": "STRIPE_WEBHOOK_SECRET is not configured."},
            status=503,
        )
    try:
        stripe.WebhookSignature.verify_header(
            request.body,
            request.headers.get("Stripe-Signature", ""),
            secret,
            tolerance=SIGNATURE_TOLERANCE_SECONDS,
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        return JsonResponse(
            {"code": "invalid_signature", "detail": "The Stripe signature is missing or invalid."},
            status=400,
        )
    try:
        event = stripe_event_parse(request.body, handled_types=HANDLED_EVENTS)
    except ServiceError as error:
        logger.warning("Refused a signed but malformed Stripe event: %s", error.detail)
        return JsonResponse(error.as_body(), status=error.status_code)
    outcome = stripe_event_store(event=event) if event["type"] in HANDLED_EVENTS else "ignored"
    logger.info("Stripe event %s (%s): %s", event.get("id"), event.get("type"), outcome)
    return JsonResponse({"status": "ok", "outcome": outcome})
