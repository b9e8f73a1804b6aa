"""Liveness and readiness probes for load balancers and orchestrators."""

import logging

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from jobs.queue_status import broker_answers

logger = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer while the process can serve requests, whatever its dependencies do."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 only when the database, the cache and the task broker all respond."""
    checks = {"database": _database_answers(), "cache": _cache_answers(), "broker": _broker()}
    if all(checks.values()):
        return JsonResponse({"status": "ok", "checks": checks})
    failing = ", ".join(name for name, ok in checks.items() if not ok)
    return JsonResponse(
        {
            "code": "service_unavailable",
            "detail": f"Not ready: {failing} unreachable.",
            "checks": checks,
        },
        status=503,
    )


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("readyz: database unreachable", exc_info=True)
        return False


def _cache_answers() -> bool:
    try:
        cache.set("readyz", "1", timeout=5)
        return cache.get("readyz") == "1"
    except Exception:
        logger.warning("readyz: cache unreachable", exc_info=True)
        return False


def _broker() -> bool:
    answers = broker_answers()
    if not answers:
        logger.warning("readyz: broker unreachable (CELERY_BROKER_URL)")
    return answers
