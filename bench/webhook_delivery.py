"""Outgoing webhooks per second through one Celery worker (`make worker`: prefork,
CELERY_CONCURRENCY processes) to a local receiver, on the bench's broker and database.

Events are written as the product writes them (`event_emit`, one outbox row and one delivery
each, queued on commit); the figure is end to end, from the commit to the last delivery
marked succeeded: claim, re-vetting the URL, signing (Standard Webhooks), the POST, the
attempt log and the endpoint's health. The floor is the same signed POSTs sent from this
process in a loop, with no queue and no database.
"""

import datetime as dt
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class DeliveryTimings:
    deliveries: int
    concurrency: int
    per_second: float
    floor_per_second: float


def _wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("the bench worker did not deliver in time")
        time.sleep(0.05)


def measure(env: dict[str, str], deliveries: int = 2_000, concurrency: int = 2) -> DeliveryTimings:
    """Start a receiver and one worker, emit `deliveries` events, time until all succeeded."""
    import httpx
    from django.conf import settings
    from django.db import transaction
    from standardwebhooks.webhooks import Webhook

    from a1zap.celery import app
    from notifications.events import event_emit
    from notifications.models import DeliveryStatus, WebhookDelivery
    from notifications.services import endpoint_create, endpoint_delete

    settings.WEBHOOK_ALLOW_INSECURE_TARGETS = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    owner = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
    endpoint, secret = endpoint_create(owner_id=owner, url=url)

    os.environ["CELERY_BROKER_URL"] = BENCH_BROKER_URL
    app.conf.broker_url = BENCH_BROKER_URL
    worker_env = {**env, "CELERY_BROKER_URL": BENCH_BROKER_URL, "LOG_LEVEL": "WARNING",
                  "WEBHOOK_ALLOW_INSECURE_TARGETS": "true"}  # fmt: skip
    app.control.purge()
    worker = subprocess.Popen(  # noqa: S603 (our own celery and arguments)
        [str(ROOT / ".venv/bin/celery"), "-A", "a1zap", "worker", "--concurrency",
         str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=worker_env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    data = {"id": str(uuid.uuid4()), "owner_id": owner, "name": "Bench", "handle": "bench",
            "agent_type": "work", "status": "active"}  # fmt: skip

    def succeeded() -> bool:
        done = WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.SUCCEEDED)
        return done.count() >= deliveries

    try:
        _wait_for(lambda: bool(app.control.ping(timeout=0.5)), 60)
        with transaction.atomic():
            for _ in range(deliveries):
                event_emit(owner_id=owner, event_type="agent.updated", data=data)
            started = time.perf_counter()
        _wait_for(succeeded, 900)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    body = json.dumps({"type": "agent.updated", "data": data}, separators=(",", ":"))
    signer = Webhook(secret)
    floor_started = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        for n in range(deliveries):
            now = time.time()
            signature = signer.sign(msg_id=f"evt_{n}", timestamp=_utc(now), data=body)
            client.post(url, content=body, headers={
                "webhook-id": f"evt_{n}", "webhook-timestamp": str(int(now)),
                "webhook-signature": signature, "content-type": "application/json",
            })  # fmt: skip
    floor = deliveries / (time.perf_counter() - floor_started)
    server.shutdown()
    endpoint_delete(endpoint_id=endpoint.pk)
    return DeliveryTimings(deliveries, concurrency, deliveries / elapsed, floor)


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    from bench import usage_ingest

    usage_ingest.setup_django()
    result = measure(dict(os.environ))
    print(f"{result.per_second:,.0f} deliveries/s through one worker "
          f"({result.concurrency} processes); floor {result.floor_per_second:,.0f}/s")  # fmt: skip
