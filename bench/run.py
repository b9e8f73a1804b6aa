"""Benchmark the project at scale and print one table, every row measured side by side.

    .venv/bin/python bench/run.py [--small-agents 1000] [--close-agents 20000]
        [--admin-agents 100000] [--configs 4x2] [--servers async,gthread] [--duration 4]
        [--clients 16] [--stalled 16] [--rounds 5] [--profile 300] [--profile-top 20]

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
   a page of 50 messages, each beside its two floors (`bench/floors.py`: the same rows from
   a plain Django view with `.values()` and `JsonResponse`, and from a plain DRF
   `ListAPIView` with a `ModelSerializer`; served only by the bench's server, whose settings
   are `bench.settings`), usage ingestion through the API in batches of 1 and 1000 against
   the same upserts in direct SQL, and the workers' peak memory. Before the HTTP loads, the
   analytics rows (`bench/analytics.py`): the analytics endpoint for a year of an agent with
   `--analytics-messages` messages against one with 1,000, and the message write path with
   the rollup against without it. The loads run `--rounds`
   times, interleaved (a load next to its floors), and each row shows its median round and,
   as its ratio, the median of the rounds' ratios: other work on the machine slows a load and
   the floor measured next to it alike. Then `--profile` requests per hot endpoint run in
   this process (`bench/cpu_profile.py`): their CPU per request, and where it goes.
3. It adds agents without usage up to `--admin-agents`; the admin pages are timed again.

The full-size run (about 15 minutes on two cores):

    make bench BENCH_ARGS="--close-agents 100000 --admin-agents 1000000"

A benchmark, not a test: it measures and prints, it asserts nothing. Everything runs on the
same machine, so the load generator and PostgreSQL share the server's cores.
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    admin_pages,
    analytics,
    cpu_profile,
    dataset,
    http_load,
    monthly_close,
    task_queue,
    webhook_delivery,
)
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


def _ratio(value: float, floor: float) -> str:
    return f"{value / floor:.0%}" if floor else "-"


def _rate(value: float, unit: str = "req/s") -> str:
    return f"{value:,.0f} {unit}"


def _latency(result: http_load.LoadResult, unit: str = "req/s") -> str:
    failures = f", **{result.failures} failed**" if result.failures else ""
    return (
        f"{_rate(result.rate, unit)}, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
        f"{failures}"
    )


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
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return dict(os.environ)


@dataclass(frozen=True)
class Rounds:
    """Every round's result of each load."""

    results: dict[str, list[http_load.LoadResult]]

    def median(self, name: str) -> http_load.LoadResult:
        """The round with the median rate (its latencies come with it)."""
        ordered = sorted(self.results[name], key=lambda result: result.rate)
        return ordered[(len(ordered) - 1) // 2]

    def ratio(self, name: str, floor: str) -> float:
        """The median over the rounds of the load's rate over its floor's in the same round."""
        pairs = zip(self.results[name], self.results[floor], strict=True)
        return statistics.median(load.rate / base.rate if base.rate else 0.0
                                 for load, base in pairs)  # fmt: skip


def _sql_load(work: list[Callable[[], int]], clients: int) -> http_load.LoadResult:
    done, seconds = ingest.run_parallel(work, clients)
    return http_load.LoadResult(done, seconds, 0.0, 0.0, failures=0, client="psycopg")


def _rounds(loads: dict[str, Callable[[int], http_load.LoadResult]], rounds: int) -> Rounds:
    """Run every load once per round, in alternating order.

    Other work on the machine slows neighbouring loads alike: a load and its floor are
    measured next to each other, and a ratio is the median of the rounds' ratios.
    """
    results: dict[str, list[http_load.LoadResult]] = {name: [] for name in loads}
    for number in range(rounds):
        order = list(loads) if number % 2 == 0 else list(reversed(loads))
        for name in order:
            results[name].append(loads[name](number))
            _log(f"round {number + 1}: {name} {results[name][-1].rate:,.0f}/s")
    return Rounds(results)


def http_rows(server_kind: str, config: tuple[int, int], arguments: argparse.Namespace,
              owner_id: str, conversation_id: str, token: str,
              full: bool) -> list[Row]:  # fmt: skip
    """Load one server and configuration; the ingestion floors only for the first (`full`).

    Each load runs `--rounds` times, interleaved with the others; rows show the median round.
    """
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
        stalled = arguments.stalled
        with http_load.stalled_uploads(server, stalled):
            held = http_load.fresh_gets(server, "/healthz", clients, STALLED_TIMEOUT)
        _log(f"{name}: /healthz behind {stalled} stalled uploads: {held}")

        run = uuid.uuid4().hex[:8]
        _, key_single = ingest.new_agent(f"bench-single-{run}")
        messages = f"conversations/{conversation_id}/messages/"

        def get(path: str, headers: dict[str, str]) -> Callable[[int], http_load.LoadResult]:
            return lambda _: http_load.get(server, path, headers, clients, seconds)

        loads: dict[str, Callable[[int], http_load.LoadResult]] = {
            "health": get("/healthz", {}),
            "agents django": get(f"/bench/floor/django/agents/?owner={owner_id}", {}),
            "agents drf": get(f"/bench/floor/drf/agents/?owner={owner_id}", {}),
            "agents": get("/api/v1/agents/", owner),
            "messages django": get(f"/bench/floor/django/{messages}", {}),
            "messages drf": get(f"/bench/floor/drf/{messages}", {}),
            "messages": get(f"/api/v1/{messages}", owner),
            "single": lambda number: http_load.post_single_events(
                server, key_single, f"s{run}r{number}", clients, seconds
            ),
        }
        if full:
            agent_sql, _ = ingest.new_agent(f"bench-sql-{run}")
            _, key_batch = ingest.new_agent(f"bench-batch-{run}")

            def sql_single(number: int) -> http_load.LoadResult:
                return _sql_load(
                    [partial(ingest.direct_sql_batch, agent_sql, f"bench-sql-{run}", [event])
                     for event in ingest.events(f"q1{run}r{number}", arguments.single)],
                    clients,
                )  # fmt: skip

            def api_batches(number: int) -> http_load.LoadResult:
                events = ingest.events(f"b{run}r{number}", arguments.batched)
                return _sql_load(
                    [partial(ingest.post_events, port, key_batch,
                             {"events": events[i : i + ingest.BATCH]})
                     for i in range(0, arguments.batched, ingest.BATCH)],
                    clients,
                )  # fmt: skip

            def sql_batches(number: int) -> http_load.LoadResult:
                events = ingest.events(f"q{run}r{number}", arguments.batched)
                return _sql_load(
                    [partial(ingest.direct_sql_batch, agent_sql, f"bench-sql-{run}",
                             events[i : i + ingest.BATCH])
                     for i in range(0, arguments.batched, ingest.BATCH)],
                    clients,
                )  # fmt: skip

            loads |= {"single sql": sql_single, "batches": api_batches,
                      "batches sql": sql_batches}  # fmt: skip
        _log(f"{name}: {arguments.rounds} rounds of {len(loads)} loads")
        measured = _rounds(loads, arguments.rounds)
        health = measured.median("health")
        _log(
            f"{name}: /healthz {health.rate:,.0f} req/s; of the plain Django floor: agents "
            f"{measured.ratio('agents', 'agents django'):.0%}, messages "
            f"{measured.ratio('messages', 'messages django'):.0%}"
        )
        rows += [
            Row("`GET /healthz` (framework floor)", name, _latency(health), "-", "-"),
            Row(f"`GET /healthz`, {clients} new connections at once, while {stalled} uploads "
                "stall (100 kB announced, 1 byte sent)", name, str(held), "-", "-"),
        ]  # fmt: skip
        for resource, label in (
            ("agents", f"`GET /api/v1/agents/` ({AGENTS_PER_OWNER} agents, one owner)"),
            ("messages", "`GET /api/v1/conversations/{id}/messages/` (page of 50)"),
        ):
            floor_name, drf_name = f"{resource} django", f"{resource} drf"
            floor = measured.median(floor_name)
            rows += [
                Row(f"{resource}: plain Django view (`.values()`, `JsonResponse`, no auth)",
                    name, _latency(floor), "-", "-"),
                Row(f"{resource}: plain DRF `ListAPIView` (`ModelSerializer`, cursor pages, "
                    "no auth, no throttle)", name, _latency(measured.median(drf_name)),
                    _rate(floor.rate), f"{measured.ratio(drf_name, floor_name):.0%}"),
                Row(f"{label}, as the owner", name, _latency(measured.median(resource)),
                    f"plain Django: {_rate(floor.rate)}",
                    f"{measured.ratio(resource, floor_name):.0%} "
                    f"(plain DRF x{measured.ratio(resource, drf_name):.2f})"),
            ]  # fmt: skip
        single = measured.median("single")
        if full:
            single_sql, batches, batches_sql = (
                measured.median("single sql"),
                measured.median("batches"),
                measured.median("batches sql"),
            )
            rows += [
                Row("Usage ingestion, API, batches of 1", name, _latency(single, "events/s"),
                    f"direct SQL, batches of 1: {_rate(single_sql.rate, 'events/s')}",
                    f"{measured.ratio('single', 'single sql'):.0%}"),
                Row(f"Usage ingestion, API, batches of {ingest.BATCH}",
                    f"{name}, {batches.requests:,} events", _rate(batches.rate, "events/s"),
                    f"direct SQL, batches of {ingest.BATCH}: "
                    f"{_rate(batches_sql.rate, 'events/s')}",
                    f"{measured.ratio('batches', 'batches sql'):.0%}"),
            ]  # fmt: skip
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
    parser.add_argument("--duration", type=float, default=4, help="seconds per HTTP load (4)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of the HTTP loads (5)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=300,
        help="in-process requests per hot endpoint for the CPU profile (300; 0: none)",
    )
    parser.add_argument(
        "--profile-top", type=int, default=20, help="functions shown per profiled endpoint (20)"
    )
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
        "--analytics-messages",
        type=int,
        default=1_000_000,
        help="messages of the large agent of the analytics rows (1,000,000; 0: no such rows)",
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
    _log("outgoing webhooks: one worker to a local receiver")
    hooks = webhook_delivery.measure(env)
    rows.append(
        Row(f"Webhooks: deliveries through one worker ({hooks.concurrency} processes) to a "
            "local receiver", f"{hooks.deliveries:,} events, signed, each attempt logged",
            f"{hooks.per_second:,.0f} deliveries/s",
            f"same signed POSTs, no queue: {hooks.floor_per_second:,.0f}/s",
            _ratio(hooks.per_second, hooks.floor_per_second))
    )  # fmt: skip

    if arguments.analytics_messages:
        _log("analytics: the endpoint at two sizes, the write path with and without the rollup")
        rows += [
            Row(*row)
            for row in analytics.rows(
                large_messages=arguments.analytics_messages, small_messages=1_000,
                write_messages=300, rounds=arguments.rounds,
            )
        ]  # fmt: skip

    owner_id = dataset.owner_with_agents(AGENTS_PER_OWNER)
    conversation_id = dataset.long_conversation(owner_id)
    token = stack_auth.token(owner_id, exp_in=3600)
    http: list[Row] = []
    runs = [(server_kind, config) for config in configs for server_kind in servers]
    for index, (server_kind, config) in enumerate(runs):
        http += http_rows(server_kind, config, arguments, owner_id, conversation_id, token,
                          index == 0)  # fmt: skip

    profiles: list[cpu_profile.Profile] = []
    if arguments.profile:
        _log(f"profile: {arguments.profile} in-process requests per endpoint")
        _, profile_key = ingest.new_agent(f"bench-profile-{uuid.uuid4().hex[:8]}")
        endpoints = cpu_profile.hot_endpoints(
            owner_id=owner_id, conversation_id=conversation_id, token=token, app_key=profile_key
        )
        profiles = cpu_profile.profile_all(endpoints, arguments.profile, arguments.profile_top)

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
    if profiles:
        print(
            "\nCPU per request in process (Django's WSGI handler, no network; the median of "
            f"{cpu_profile.ROUNDS} interleaved rounds of {arguments.profile} requests):\n"
        )
        print(cpu_profile.report(profiles))
    if close.overage_users:
        print(
            f"\nThe close billed {close.overage_users:,} users for overage, "
            f"{close.amount:,.2f} USD in total."
        )


if __name__ == "__main__":
    main()
