"""Compare gunicorn WORKERSxTHREADS settings in interleaved rounds, on the bench's data.

    .venv/bin/python bench/gunicorn_configs.py [--configs 2x4,4x2,3x2,3x1,2x2] [--rounds 3]
        [--servers async,gthread]

Run `make bench` first: this reuses its database (an owner with ten agents). Each round
starts every configuration in turn and measures, under `--clients` connections, an owner's
`GET /api/v1/agents/` (CPU in Python), single usage events through the API (waiting on
PostgreSQL's commits) and `GET /healthz`, for each server of `--servers` (`async` as
`make run` serves, `gthread` as before). Rounds interleave the configurations so that
other work on the machine slows them all alike; the table shows the median and the best
round of each. A benchmark: it measures and prints, it asserts nothing.
"""

import argparse
import os
import statistics
import sys
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import dataset, http_load  # noqa: E402
from bench import usage_ingest as ingest  # noqa: E402
from bench.run import AGENTS_PER_OWNER, _config, _env, _log  # noqa: E402

# A server ("async", "gthread") with its workers and threads.
Variant = tuple[str, int, int]
MEASURES = ("GET /api/v1/agents/", "POST one usage event", "GET /healthz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--configs", default="2x4,4x2,3x2,3x1,2x2,4x1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument(
        "--servers", default="async", help="comma-separated: async (as make run), gthread (before)"
    )
    arguments = parser.parse_args()
    servers = arguments.servers.split(",")
    if not set(servers) <= set(http_load.SERVERS):
        parser.error(f"--servers: one of {', '.join(http_load.SERVERS)}")
    configs = [(server, *_config(text)) for text in arguments.configs.split(",")
               for server in servers]  # fmt: skip

    from tests.stack_auth import StackAuthFake

    stack_auth = StackAuthFake()
    os.environ["STACK_AUTH_API_URL"] = stack_auth.serve()
    os.environ["STACK_AUTH_PROJECT_ID"] = stack_auth.project_id
    _env(ingest.BENCH_CACHE_URL)
    ingest.setup_django()
    dataset.lift_rate_limits()
    owner = {"x-stack-access-token": stack_auth.token(dataset.owner_with_agents(AGENTS_PER_OWNER),
                                                      exp_in=3600)}  # fmt: skip
    _, key = ingest.new_agent(f"bench-configs-{uuid.uuid4().hex[:8]}")
    rates: dict[Variant, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    p99: dict[Variant, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    memory: dict[Variant, float] = defaultdict(float)
    clients, seconds = arguments.clients, arguments.duration
    for round_number in range(arguments.rounds):
        order = configs if round_number % 2 == 0 else list(reversed(configs))
        for config in order:
            kind, workers, threads = config
            server = http_load.start_gunicorn(
                ingest.free_port(), workers, threads, dict(os.environ), kind
            )
            try:
                http_load.get(server, "/api/v1/agents/", owner, clients, 2)
                results = {
                    MEASURES[0]: http_load.get(server, "/api/v1/agents/", owner, clients, seconds),
                    MEASURES[1]: http_load.post_single_events(
                        server, key, f"c{uuid.uuid4().hex[:8]}", clients, seconds
                    ),
                    MEASURES[2]: http_load.get(server, "/healthz", {}, clients, seconds),
                }
                memory[config] = max(memory[config], server.worker_memory_mib()[1] * workers)
            finally:
                server.stop()
            for name, result in results.items():
                rates[config][name].append(result.rate)
                p99[config][name].append(result.p99_ms)
            _log(
                f"round {round_number + 1}, {kind} {workers}x{threads}: "
                + ", ".join(f"{name} {result.rate:,.0f}/s" for name, result in results.items())
            )
    stack_auth.stop()

    print(f"\ngunicorn configurations, {clients} clients, "
          f"{arguments.rounds} interleaved rounds of {seconds:g} s: requests/s as median "
          "(best), p99 median\n")  # fmt: skip
    print("| server, workers x threads | " + " | ".join(MEASURES) + " | workers' peak RSS, sum |")
    print("| --- |" + " ---: |" * (len(MEASURES) + 1))
    for config in configs:
        cells = [
            f"{statistics.median(rates[config][name]):,.0f} ({max(rates[config][name]):,.0f}), "
            f"p99 {statistics.median(p99[config][name]):,.0f} ms"
            for name in MEASURES
        ]
        print(
            f"| {config[0]} {config[1]}x{config[2]} | "
            + " | ".join(cells)
            + f" | {memory[config]:,.0f} MiB |"
        )


if __name__ == "__main__":
    main()
