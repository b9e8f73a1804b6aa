"""Benchmark usage ingestion: the HTTP API under gunicorn vs the same upserts in plain SQL.

    .venv/bin/python bench/usage_ingest.py [--single N] [--batched N] [--clients C]

Runs against its own database (BENCH_DATABASE_URL, default `a1zap_bench`, created and
migrated if missing), starts gunicorn the way `make run` does, and prints events per second
for: single events through the API, batches of 1000 through the API, and batches of 1000
written directly with psycopg (the same statements the service runs, without Django). The
ratio of the API's batched rate to the direct rate shows what the framework costs.
This is a benchmark, not a test: it measures, it asserts nothing.
"""

import argparse
import datetime as dt
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/a1zap_bench"
)
BENCH_CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3")
BATCH = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_database() -> None:
    env = {**os.environ, "DATABASE_URL": BENCH_DATABASE_URL, "CACHE_URL": BENCH_CACHE_URL}
    for command in (["ensure_database"], ["migrate", "--no-input", "-v", "0"]):
        subprocess.run(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True
        )


def setup_django() -> None:
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ["CACHE_URL"] = BENCH_CACHE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a1zap.settings.base")
    import django

    django.setup()


def new_agent(owner_id: str) -> tuple[str, str]:
    """Create an agent for the owner on an enterprise plan without rate limits to speak of."""
    from agents.services import agent_create
    from billing.models import SubscriptionPlan, UserSubscription

    SubscriptionPlan.objects.filter(pk="enterprise").update(app_requests_per_minute=10_000_000)
    UserSubscription.objects.update_or_create(
        user_id=owner_id,
        defaults={"plan_id": "enterprise", "max_personal_agents": -1, "max_work_agents": -1,
                  "max_total_agents": -1},
    )  # fmt: skip
    handle = "bench_" + uuid.uuid4().hex[:20]
    agent, key = agent_create(owner_id=owner_id, name="Bench", handle=handle, agent_type="work")
    return str(agent.pk), key


def start_gunicorn(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": BENCH_DATABASE_URL, "CACHE_URL": BENCH_CACHE_URL}
    process = subprocess.Popen(  # noqa: S603 (our own gunicorn and arguments)
        [str(ROOT / ".venv/bin/gunicorn"), "a1zap.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start within 30 s")


def events(prefix: str, count: int) -> list[dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {"id": f"{prefix}-{n}", "timestamp": (now - dt.timedelta(days=n % 28)).isoformat(),
         "messages": 1, "api_calls": 2, "compute_seconds": 3}
        for n in range(count)
    ]  # fmt: skip


def run_parallel(work: list[Callable[[], int]], clients: int) -> tuple[int, float]:
    """Run the work items on `clients` threads; return (events done, seconds)."""
    lock = threading.Lock()
    queue = list(reversed(work))
    done = 0

    def worker() -> None:
        nonlocal done
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            count = item()
            with lock:
                done += count

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done, time.perf_counter() - started


_local = threading.local()


def post_events(port: int, key: str, body: object) -> int:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    payload = json.dumps(body)
    connection.request(
        "POST", "/api/v1/usage/events/", payload,
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    response = connection.getresponse()
    answer = response.read()
    if response.status != 202:
        raise SystemExit(f"ingestion failed: {response.status} {answer[:300]!r}")
    return int(json.loads(answer)["accepted"])


def direct_sql_batch(agent_id: str, owner_id: str, batch: list[dict[str, object]]) -> int:
    """The service's statements for one batch, through psycopg without Django."""
    import psycopg
    from django.conf import settings

    connection = getattr(_local, "pg", None)
    if connection is None:
        database = settings.DATABASES["default"]
        connection = _local.pg = psycopg.connect(
            dbname=database["NAME"], user=database["USER"], host=database["HOST"],
            port=database["PORT"] or 5432,
        )  # fmt: skip
    days: dict[dt.date, list[int]] = {}
    with connection.transaction():
        connection.execute("SELECT status FROM a1_agents WHERE id = %s FOR SHARE", [agent_id])
        new_ids = {
            row[0]
            for row in connection.execute(
                "INSERT INTO usage_event_ids (agent_id, event_id, occurred_at) "
                "SELECT %s, e.id, e.at FROM unnest(%s::text[], %s::timestamptz[]) AS e(id, at) "
                "ON CONFLICT DO NOTHING RETURNING event_id",
                [agent_id, [e["id"] for e in batch], [e["timestamp"] for e in batch]],
            )
        }
        for event in batch:
            if event["id"] in new_ids:
                day = dt.datetime.fromisoformat(str(event["timestamp"])).date()
                totals = days.setdefault(day, [0, 0, 0])
                totals[0] += 1
                totals[1] += 2
                totals[2] += 3
        ordered = sorted(days.items())
        connection.execute(
            "INSERT INTO user_monthly_usage AS m (user_id, month, message_count, updated_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (user_id, month) DO UPDATE "
            "SET message_count = m.message_count + EXCLUDED.message_count",
            [owner_id, dt.date.today().replace(day=1), sum(t[0] for _, t in ordered)],
        )
        connection.execute(
            "INSERT INTO agent_usage AS u (agent_id, date, message_count, api_calls, "
            "compute_seconds, estimated_cost) "
            "SELECT %s, d.day, d.m, d.a, d.c, d.m * 0.002 + d.a * 0.0005 + d.c * 0.0001 "
            "FROM unnest(%s::date[], %s::int[], %s::int[], %s::int[]) AS d(day, m, a, c) "
            "ON CONFLICT (agent_id, date) DO UPDATE SET "
            "message_count = u.message_count + EXCLUDED.message_count, "
            "api_calls = u.api_calls + EXCLUDED.api_calls, "
            "compute_seconds = u.compute_seconds + EXCLUDED.compute_seconds, "
            "estimated_cost = u.estimated_cost + EXCLUDED.estimated_cost",
            [agent_id, [d for d, _ in ordered], [t[0] for _, t in ordered],
             [t[1] for _, t in ordered], [t[2] for _, t in ordered]],
        )  # fmt: skip
    return len(new_ids)


def measure(single: int, batched: int, clients: int) -> list[tuple[str, int, float]]:
    prepare_database()
    setup_django()
    run = uuid.uuid4().hex[:8]
    port = free_port()
    server = start_gunicorn(port)
    try:
        _, key_one = new_agent(f"bench-single-{run}")
        _, key_many = new_agent(f"bench-batch-{run}")
        agent_sql, _ = new_agent(f"bench-sql-{run}")

        single_work: list[Callable[[], int]] = [
            partial(post_events, port, key_one, event) for event in events(f"s{run}", single)
        ]
        batch_events = events(f"b{run}", batched)
        batch_work: list[Callable[[], int]] = [
            partial(post_events, port, key_many, {"events": batch_events[i : i + BATCH]})
            for i in range(0, batched, BATCH)
        ]
        sql_events = events(f"q{run}", batched)
        sql_work: list[Callable[[], int]] = [
            partial(direct_sql_batch, agent_sql, f"bench-sql-{run}", sql_events[i : i + BATCH])
            for i in range(0, batched, BATCH)
        ]

        rows = []
        plan: list[tuple[str, list[Callable[[], int]]]] = [
            ("API, batches of 1", single_work),
            (f"API, batches of {BATCH}", batch_work),
            (f"direct SQL (psycopg), batches of {BATCH}", sql_work),
        ]
        for name, work in plan:
            done, seconds = run_parallel(work, clients)
            rows.append((name, done, seconds))
        return rows
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--single", type=int, default=5_000, help="events sent one per request")
    parser.add_argument("--batched", type=int, default=100_000, help="events sent in batches")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    arguments = parser.parse_args()

    rows = measure(arguments.single, arguments.batched, arguments.clients)
    rates = {name: done / seconds for name, done, seconds in rows}
    print(
        f"\nUsage ingestion, {arguments.clients} concurrent clients, gunicorn 2 workers x 4 threads"
    )
    print(f"{'path':<42} {'events':>9} {'seconds':>9} {'events/s':>10}")
    for name, done, seconds in rows:
        print(f"{name:<42} {done:>9} {seconds:>9.2f} {rates[name]:>10.0f}")
    api_batched, direct = (
        rates[f"API, batches of {BATCH}"],
        rates[f"direct SQL (psycopg), batches of {BATCH}"],
    )
    print(f"\nbatched API / direct SQL: {api_batched / direct:.0%} (target at least 50%)")
    single_rate = rates["API, batches of 1"]
    print(f"single events through the API: {single_rate:.0f}/s (target at least 1,000/s)")


if __name__ == "__main__":
    main()
