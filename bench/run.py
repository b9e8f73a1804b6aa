"""Benchmark the project at scale and print one table, every row measured side by side.

    .venv/bin/python bench/run.py [--small-agents 1000] [--close-agents 20000]
        [--admin-agents 100000] [--configs 4x2] [--servers async,gthread] [--duration 8]
        [--clients 16] [--stalled 16]

`make bench` runs this (and installs wrk first). On its own database (BENCH_DATABASE_URL,
default `a1zap_bench`, created and migrated if missing; its demo tables are emptied at the
start of every run) and its own Redis databases (BENCH_CACHE_URL; BENCH_BROKER_URL for the
Celery row), in three stages:

1. `generate_demo_data` writes `--small-agents` agents (10 per owner) with `--days` days of
   usage ending the last day of last month; the admin's agent list and a handle search are
   timed at that size.
2. It adds agents with usage up to `--close-agents`; the monthly close of last month is timed
   through Django and against one hand-written SQL aggregation of the same totals; then, for
   each gunicorn `WORKERSxTHREADS` of `--configs` and each server of `--servers` (`async`, as
   `make run` serves; `gthread`, gunicorn's threaded worker as before), under `--clients`
   concurrent connections: `GET /healthz` (the framework floor), the same on new connections
   while `--stalled` others announce a body and stall, an owner's `GET /api/v1/agents/` and
   a page of 50 messages, usage ingestion through the API in batches of 1 and 1000 against
   the same upserts in direct SQL, and the workers' peak memory.
3. It adds agents without usage up to `--admin-agents`; the admin pages are timed again.

The full-size run (about 10 minutes on two cores):

    make bench BENCH_ARGS="--close-agents 100000 --admin-agents 1000000"

A benchmark, not a test: it measures and prints, it asserts nothing. Everything runs on the
same machine, so the load generator and PostgreSQL share the server's cores.
"""

import argparse
import datetime as dt
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import admin_pages, dataset, http_load, monthly_close, task_queue  # noqa: E402
from bench import usage_ingest as ingest  # noqa: E402

AGENTS_PER_OWNER = 10
# How long a health check behind stalled uploads may take before it counts as unanswered.
STALLED_TIMEOUT = 10.0
SMALL_SEED, CLOSE_SEED, ADMIN_SEED = 101, 102, 103
# The development Fernet key: a few demo agents have encrypted contact details.
BENCH_ENCRYPTION_KEY = "ZGV2LW9ubHktYTF6YXAtZmllbGQta2V5LTAwMDAwMDA="


@dataclass(frozen=True)
class Row:
    measurement: str
    size: str
    result: str
    floor: str
    ratio: str


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _config(text: str) -> tuple[int, int]:
    workers, _, threads = text.lower().partition("x")
    return int(workers), int(threads)


def _rate(value: float, unit: str = "req/s") -> str:
    return f"{value:,.0f} {unit}"


def _latency(result: http_load.LoadResult, unit: str = "req/s") -> str:
    failures = f", **{result.failures} failed**" if result.failures else ""
    return (
        f"{_rate(result.rate, unit)}, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
        f"{failures}"
    )


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.0%}" if floor else "-"


def _times(value: float, reference: float) -> str:
    return f"x{value / reference:.2f}" if reference else "-"


def _page(result: admin_pages.PageResult) -> str:
    counts = f", {result.count_queries} COUNT" if result.count_queries else ", no COUNT"
    status = "" if result.status == 200 else f", **HTTP {result.status}**"
    return (
        f"{result.median_ms:,.0f} ms ({result.queries} queries, slowest "
        f"{result.slowest_query_ms:,.1f} ms{counts}{status})"
    )


def _env(cache_url: str) -> dict[str, str]:
    os.environ["DATABASE_URL"] = ingest.BENCH_DATABASE_URL
    os.environ["CACHE_URL"] = cache_url
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", BENCH_ENCRYPTION_KEY)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a1zap.settings.base")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return dict(os.environ)


def _events_per_second(work: list[Callable[[], int]], clients: int) -> tuple[int, float]:
    done, seconds = ingest.run_parallel(work, clients)
    return done, done / seconds


def http_rows(server_kind: str, config: tuple[int, int], arguments: argparse.Namespace,
              owner_id: str, conversation_id: str, token: str,
              full: bool) -> list[Row]:  # fmt: skip
    """Load one server and configuration; the ingestion floors only for the first (`full`)."""
    workers, threads = config
    name = f"gunicorn {server_kind} {workers}x{threads}, {arguments.clients} clients"
    clients, seconds = arguments.clients, arguments.duration
    port = ingest.free_port()
    server = http_load.start_gunicorn(port, workers, threads, dict(os.environ), server_kind)
    rows: list[Row] = []
    try:
        idle_mib, _ = server.worker_memory_mib()
        owner = {"x-stack-access-token": token}
        _log(f"{name}: warming up")
        http_load.get(server, "/api/v1/agents/", owner, clients, 3)
        health = http_load.get(server, "/healthz", {}, clients, seconds)
        _log(f"{name}: /healthz {health.rate:,.0f} req/s")
        stalled = arguments.stalled
        with http_load.stalled_uploads(server, stalled):
            held = http_load.fresh_gets(server, "/healthz", clients, STALLED_TIMEOUT)
        _log(f"{name}: /healthz behind {stalled} stalled uploads: {held}")
        agents = http_load.get(server, "/api/v1/agents/", owner, clients, seconds)
        messages_path = f"/api/v1/conversations/{conversation_id}/messages/"
        messages = http_load.get(server, messages_path, owner, clients, seconds)
        _log(f"{name}: agents {agents.rate:,.0f} req/s, messages {messages.rate:,.0f} req/s")
        rows += [
            Row("`GET /healthz` (framework floor)", name, _latency(health), "-", "-"),
            Row(f"`GET /healthz`, {clients} new connections at once, while {stalled} uploads "
                "stall (100 kB announced, 1 byte sent)", name, str(held), "-", "-"),
            Row(f"`GET /api/v1/agents/` ({AGENTS_PER_OWNER} agents, one owner)", name,
                _latency(agents), _rate(health.rate), _ratio(agents.rate, health.rate)),
            Row("`GET /api/v1/conversations/{id}/messages/` (page of 50)", name,
                _latency(messages), _rate(health.rate), _ratio(messages.rate, health.rate)),
        ]  # fmt: skip

        run = uuid.uuid4().hex[:8]
        owner_single = f"bench-single-{run}"
        _, key_single = ingest.new_agent(owner_single)
        single = http_load.post_single_events(server, key_single, f"s{run}", clients, seconds)
        _log(f"{name}: single events {single.rate:,.0f}/s")
        if full:
            agent_sql, _ = ingest.new_agent(f"bench-sql-{run}")
            sql_single_events = ingest.events(f"q1{run}", arguments.single)
            sql_single: list[Callable[[], int]] = [
                partial(ingest.direct_sql_batch, agent_sql, f"bench-sql-{run}", [event])
                for event in sql_single_events
            ]
            _, sql_single_rate = _events_per_second(sql_single, clients)
            rows.append(
                Row("Usage ingestion, API, batches of 1", name, _latency(single, "events/s"),
                    f"direct SQL, batches of 1: {_rate(sql_single_rate, 'events/s')}",
                    _ratio(single.rate, sql_single_rate))
            )  # fmt: skip

            _, key_batch = ingest.new_agent(f"bench-batch-{run}")
            batch_events = ingest.events(f"b{run}", arguments.batched)
            api_batches: list[Callable[[], int]] = [
                partial(ingest.post_events, port, key_batch,
                        {"events": batch_events[i : i + ingest.BATCH]})
                for i in range(0, arguments.batched, ingest.BATCH)
            ]  # fmt: skip
            sql_events = ingest.events(f"q{run}", arguments.batched)
            sql_batches: list[Callable[[], int]] = [
                partial(ingest.direct_sql_batch, agent_sql, f"bench-sql-{run}",
                        sql_events[i : i + ingest.BATCH])
                for i in range(0, arguments.batched, ingest.BATCH)
            ]  # fmt: skip
            done, api_rate = _events_per_second(api_batches, clients)
            _, sql_rate = _events_per_second(sql_batches, clients)
            _log(f"{name}: batches {api_rate:,.0f}/s, direct SQL {sql_rate:,.0f}/s")
            rows.append(
                Row(f"Usage ingestion, API, batches of {ingest.BATCH}",
                    f"{name}, {done:,} events", _rate(api_rate, "events/s"),
                    f"direct SQL, batches of {ingest.BATCH}: {_rate(sql_rate, 'events/s')}",
                    _ratio(api_rate, sql_rate))
            )  # fmt: skip
        else:
            rows.append(
                Row("Usage ingestion, API, batches of 1", name, _latency(single, "events/s"),
                    "-", "-")
            )  # fmt: skip
        _, peak_mib = server.worker_memory_mib()
        rows.append(
            Row("Gunicorn worker peak RSS under load", name, f"{peak_mib:,.0f} MiB",
                f"after start: {idle_mib:,.0f} MiB", _times(peak_mib, idle_mib))
        )  # fmt: skip
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--small-agents",
        type=int,
        default=1_000,
        help="agents for the first admin measurement (1,000)",
    )
    parser.add_argument(
        "--close-agents",
        type=int,
        default=20_000,
        help="agents with usage for the close and the API (20,000)",
    )
    parser.add_argument(
        "--admin-agents",
        type=int,
        default=100_000,
        help="agents for the second admin measurement (100,000)",
    )
    parser.add_argument("--days", type=int, default=30, help="days of usage per agent (30)")
    parser.add_argument(
        "--messages-per-day",
        type=int,
        default=4,
        help="demo messages per agent and day, last 3 days (4)",
    )
    parser.add_argument(
        "--configs",
        default="4x2",
        help="gunicorn WORKERSxTHREADS to compare, comma-separated (4x2, as make run)",
    )
    parser.add_argument(
        "--servers",
        default="async",
        help="servers to compare, comma-separated: async (as make run) and gthread (before)",
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections (16)")
    parser.add_argument(
        "--stalled", type=int, default=16, help="stalled uploads held open in one row (16)"
    )
    parser.add_argument("--duration", type=float, default=8, help="seconds per HTTP load (8)")
    parser.add_argument(
        "--single", type=int, default=2_000, help="events for direct SQL in batches of 1 (2,000)"
    )
    parser.add_argument(
        "--batched",
        type=int,
        default=100_000,
        help="events in batches of 1000, API and SQL each (100,000)",
    )
    parser.add_argument(
        "--no-migrate", action="store_true", help="do not run migrate on the bench database"
    )
    arguments = parser.parse_args()  # fmt: skip
    sizes = (arguments.small_agents, arguments.close_agents, arguments.admin_agents)
    if not sizes[0] <= sizes[1] <= sizes[2] or sizes[0] < AGENTS_PER_OWNER:
        parser.error("sizes must grow: --small-agents <= --close-agents <= --admin-agents")
    configs = [_config(text) for text in arguments.configs.split(",")]
    servers = arguments.servers.split(",")
    for server_kind in servers:
        if server_kind not in http_load.SERVERS:
            parser.error(f"--servers: one of {', '.join(http_load.SERVERS)}")
    started = time.perf_counter()

    from tests.stack_auth import StackAuthFake

    stack_auth = StackAuthFake()
    os.environ["STACK_AUTH_API_URL"] = stack_auth.serve()
    os.environ["STACK_AUTH_PROJECT_ID"] = stack_auth.project_id
    env = _env(ingest.BENCH_CACHE_URL)
    if not arguments.no_migrate:
        _log("migrating the bench database")
        ingest.prepare_database()
    ingest.setup_django()
    dataset.reset(env)
    dataset.lift_rate_limits()
    end = dataset.last_day_of_previous_month(dt.datetime.now(dt.UTC).date())
    rows: list[Row] = []

    # Stage 1: the small database.
    _log(f"stage 1: {sizes[0]:,} agents x {arguments.days} days")
    small = dataset.generate(
        env, users=sizes[0] // AGENTS_PER_OWNER, agents_per_user=AGENTS_PER_OWNER,
        days=arguments.days, messages_per_day=arguments.messages_per_day, seed=SMALL_SEED,
        end=end,
    )  # fmt: skip
    small_list = admin_pages.changelist()
    small_search = admin_pages.handle_search(dataset.any_handle())

    # Stage 2: usage for the close and the API.
    _log(f"stage 2: up to {sizes[1]:,} agents x {arguments.days} days")
    big = small
    if sizes[1] > sizes[0]:
        big = dataset.generate(
            env, users=(sizes[1] - sizes[0]) // AGENTS_PER_OWNER,
            agents_per_user=AGENTS_PER_OWNER, days=arguments.days,
            messages_per_day=arguments.messages_per_day, seed=CLOSE_SEED, end=end,
        )  # fmt: skip
    agents_with_usage = dataset.agent_count()
    _log("monthly close")
    close = monthly_close.measure(end.replace(day=1))
    close_size = (
        f"{agents_with_usage:,} agents, {close.usage_rows:,} usage rows in {end:%Y-%m}, "
        f"{close.users:,} users"
    )
    check = "" if close.totals_match else " **(totals differ!)**"
    rows += [
        Row(f"Monthly close: `close_period_record` (Django, writes {close.users:,} ledger rows)",
            close_size,
            f"{close.record_ms:,.0f} ms", f"hand-written SQL: {close.floor_ms:,.0f} ms{check}",
            _times(close.record_ms, close.floor_ms)),
        Row("Monthly close: `period_charges` (`--dry-run`, Django)", close_size,
            f"{close.dry_run_ms:,.0f} ms", f"{close.floor_ms:,.0f} ms",
            _times(close.dry_run_ms, close.floor_ms)),
        Row("Monthly close: `CLOSE_SQL` via psycopg (no Django)", close_size,
            f"{close.close_sql_raw_ms:,.0f} ms", f"{close.floor_ms:,.0f} ms",
            _times(close.close_sql_raw_ms, close.floor_ms)),
    ]  # fmt: skip

    _log("background jobs: one worker")
    queue = task_queue.measure(env)
    rows.append(
        Row(f"Celery: tasks through one worker (`make worker`, {queue.concurrency} processes)",
            f"{queue.tasks:,} tasks, one query and one cache write each",
            f"{queue.tasks_per_second:,.0f} tasks/s",
            f"same work, no queue: {queue.floor_per_second:,.0f}/s",
            _ratio(queue.tasks_per_second, queue.floor_per_second))
    )  # fmt: skip

    owner_id = dataset.owner_with_agents(AGENTS_PER_OWNER)
    conversation_id = dataset.long_conversation(owner_id)
    token = stack_auth.token(owner_id, exp_in=3600)
    http: list[Row] = []
    runs = [(server_kind, config) for config in configs for server_kind in servers]
    for index, (server_kind, config) in enumerate(runs):
        http += http_rows(server_kind, config, arguments, owner_id, conversation_id, token,
                          index == 0)  # fmt: skip

    # Stage 3: many agents for the admin.
    _log(f"stage 3: up to {sizes[2]:,} agents (no usage)")
    bulk = None
    if sizes[2] > agents_with_usage:
        bulk = dataset.generate(
            env, users=(sizes[2] - agents_with_usage) // AGENTS_PER_OWNER,
            agents_per_user=AGENTS_PER_OWNER, days=0, messages_per_day=0, seed=ADMIN_SEED,
            end=end,
        )  # fmt: skip
    all_agents = dataset.agent_count()
    large_list = admin_pages.changelist()
    large_search = admin_pages.handle_search(dataset.any_handle())
    stack_auth.stop()

    big_rows = big.agents * arguments.days
    rows = http + rows
    rows += [
        Row("Admin agent list (superuser)", f"{all_agents:,} agents", _page(large_list),
            f"at {sizes[0]:,}: {_page(small_list)}",
            _times(large_list.median_ms, small_list.median_ms)),
        Row("Admin handle search (`?q=<handle>`)", f"{all_agents:,} agents",
            _page(large_search), f"at {sizes[0]:,}: {_page(small_search)}",
            _times(large_search.median_ms, small_search.median_ms)),
        Row("`generate_demo_data` time", f"{big.agents:,} agents x {arguments.days} days",
            f"{big.seconds:,.0f} s ({big_rows / big.seconds:,.0f} usage rows/s)",
            f"{small.agents:,} agents: {small.seconds:,.1f} s", "-"),
        Row("`generate_demo_data` peak RSS", f"{big.agents:,} agents x {arguments.days} days",
            f"{big.peak_rss_mib:,.0f} MiB", f"{small.agents:,} agents: "
            f"{small.peak_rss_mib:,.0f} MiB", _times(big.peak_rss_mib, small.peak_rss_mib)),
    ]  # fmt: skip
    if bulk is not None:
        rows.append(
            Row("`generate_demo_data`, agents without usage", f"{bulk.agents:,} agents",
                f"{bulk.seconds:,.0f} s ({bulk.agents / bulk.seconds:,.0f} agents/s), peak RSS "
                f"{bulk.peak_rss_mib:,.0f} MiB", f"{small.agents:,} agents: "
                f"{small.peak_rss_mib:,.0f} MiB", _times(bulk.peak_rss_mib, small.peak_rss_mib))
        )  # fmt: skip

    load_client = "wrk" if http_load.wrk_available() else "a Python client (install wrk)"
    print(
        f"\nA1Zap benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"load from {load_client} on the same machine; run took "
        f"{time.perf_counter() - started:,.0f} s.\n"
    )
    print("| measurement | size | result | floor (same run) | result / floor |")
    print("| --- | --- | --- | --- | ---: |")
    for row in rows:
        print(f"| {row.measurement} | {row.size} | {row.result} | {row.floor} | {row.ratio} |")
    for label, page in (("agent list", large_list), ("handle search", large_search)):
        print(f"\nSlowest query of the admin {label} at {all_agents:,} agents "
              f"({page.slowest_query_ms:,.1f} ms): `{page.slowest_sql[:400]}`")  # fmt: skip
    if close.overage_users:
        print(
            f"\nThe close billed {close.overage_users:,} users for overage, "
            f"{close.amount:,.2f} USD in total."
        )


if __name__ == "__main__":
    main()
