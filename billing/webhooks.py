"""`POST /stripe/webhook/`: Stripe's signed events, verified with STRIPE_WEBHOOK_SECRET."""

import json
import logging

import stripe
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.stripe_events import stripe_event_apply
from billing.stripe_gateway import BillingUnavailable

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Verify the signature (300 s tolerance), then apply the event; nothing is stored for a
    bad signature. A 503 makes Stripe deliver the event again later."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return JsonResponse(
            {"code": "webhook_unavailable", "detail": "STRIPE_WEBHOOK_SECRET is not configured."},
            status=503,
        )
    try:
        stripe.Webhook.construct_event(
            request.body,
            request.headers.get("Stripe-Signature", ""),
            secret,
            tolerance=SIGNATURE_TOLERANCE_SECONDS,
        )
        event = json.loads(request.body)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError):
        return JsonResponse(
            {"code": "invalid_signature", "detail": "The Stripe signature is missing or invalid."},
            status=400,
        )
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        return JsonResponse(
            {"code": "validation_error", "detail": "Not a Stripe event."}, status=400
        )
    try:
        outcome = stripe_event_apply(event=event)
    except BillingUnavailable as error:
        return JsonResponse(error.as_body(), status=error.status_code)
    logger.info("Stripe event %s (%s): %s", event.get("id"), event.get("type"), outcome)
    return JsonResponse({"status": "ok", "outcome": outcome})
