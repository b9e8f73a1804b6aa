"""The admin's agent list and a handle search, through Django's test client as a superuser.

Whatever the admin does (a full COUNT, an unindexed search), the time and the queries show
it: the slowest query and any COUNT are reported with the median time of a page.
"""

import logging
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlencode

CHANGELIST = "/admin/agents/a1agent/"
SUPERUSER = "bench-admin"


@dataclass(frozen=True)
class PageResult:
    median_ms: float
    queries: int
    slowest_query_ms: float
    count_queries: int
    status: int
    slowest_sql: str


def _superuser() -> object:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user = user_model.objects.filter(username=SUPERUSER).first()
    if user is None:
        user = user_model.objects.create_superuser(SUPERUSER, "bench@example.com", None)
    return user


def measure(path: str, repeat: int = 5) -> PageResult:
    """GET the admin page `repeat` times (after one warm-up) and return the median."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    client = Client(raise_request_exception=False)
    client.force_login(_superuser())  # type: ignore[arg-type]
    # Plain static storage: the admin's pages need no collected manifest to render.
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    timings = []
    # An error page is reported in the table (HTTP 500), not logged with its traceback.
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.CRITICAL)
    with override_settings(STORAGES=storages):
        client.get(path)
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
    request_log.setLevel(level)
    captured = queries.captured_queries
    slowest = max(captured, key=lambda q: float(q["time"]), default={"sql": ""})
    return PageResult(
        median_ms=statistics.median(timings),
        queries=len(captured),
        slowest_query_ms=max((float(q["time"]) * 1000 for q in captured), default=0.0),
        count_queries=sum("COUNT(" in q["sql"].upper() for q in captured),
        status=response.status_code,
        slowest_sql=" ".join(str(slowest["sql"]).split()),
    )


def changelist() -> PageResult:
    return measure(CHANGELIST)


def handle_search(handle: str) -> PageResult:
    return measure(f"{CHANGELIST}?{urlencode({'q': handle})}")
