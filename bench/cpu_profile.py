"""CPU per request of the hot endpoints, in process: Django's WSGI handler, no network.

For each endpoint: warm-up requests, then ROUNDS interleaved rounds of `requests` timed
requests each (the thread's CPU time, no profiler; the median round counts), then as many
again under cProfile, whose functions with the largest cumulative time per request it
prints. cProfile's clock is the wall clock (a CPU clock costs a system call per event and
distorts more), so the profile's times include the short waits on PostgreSQL and Redis and
its overhead inflates them: read them as shares, the CPU column as the cost.

`bench/run.py --profile N` runs it in every `make bench`; alone, on the data of the last
run: `.venv/bin/python bench/cpu_profile.py [--requests 300] [--top 25] [--only agents]`.
Every request must answer the status its endpoint expects, or it stops.
"""

import argparse
import cProfile
import datetime as dt
import io
import itertools
import json
import os
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

WARM_UP = 50
ROUNDS = 3


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    # The n-th request's body (JSON text), for a POST.
    body: Callable[[int], str] | None = None
    status: int = 200


@dataclass(frozen=True)
class FunctionCost:
    where: str
    calls_per_request: float
    own_ms: float
    cumulative_ms: float


@dataclass(frozen=True)
class Profile:
    endpoint: Endpoint
    requests: int
    cpu_ms: float
    top: list[FunctionCost]


def _environ(endpoint: Endpoint, sequence: int) -> dict[str, Any]:
    path, _, query = endpoint.path.partition("?")
    body = endpoint.body(sequence).encode() if endpoint.body else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": endpoint.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1",
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in endpoint.headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


class _Caller:
    """Send an endpoint's requests to the WSGI application, checking each status."""

    def __init__(self, application: Any, endpoint: Endpoint, counter: Iterator[int]) -> None:
        self.application, self.endpoint, self.counter = application, endpoint, counter

    def __call__(self, count: int) -> None:
        statuses: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            statuses.append(status)

        for _ in range(count):
            statuses.clear()
            result = self.application(_environ(self.endpoint, next(self.counter)), start_response)
            body = b"".join(result)
            close = getattr(result, "close", None)
            if close is not None:
                close()
            if not statuses or int(statuses[0].split()[0]) != self.endpoint.status:
                raise SystemExit(
                    f"profile: {self.endpoint.method} {self.endpoint.path} answered "
                    f"{statuses[:1]} {body[:300]!r}, not {self.endpoint.status}"
                )


def hot_endpoints(*, owner_id: str, conversation_id: str, token: str,
                  app_key: str) -> list[Endpoint]:  # fmt: skip
    """The framework floor, the two lists with their floors, and one usage event."""
    owner = {"x-stack-access-token": token}
    messages = f"conversations/{conversation_id}/messages/"
    run = uuid.uuid4().hex[:8]

    def usage_event(sequence: int) -> str:
        at = dt.datetime.now(dt.UTC) - dt.timedelta(days=sequence % 28)
        return json.dumps({"id": f"p{run}-{sequence}", "timestamp": at.isoformat(),
                           "messages": 1, "api_calls": 2, "compute_seconds": 3})  # fmt: skip

    return [
        Endpoint("`GET /healthz`", "GET", "/healthz"),
        Endpoint("agents: plain Django floor", "GET",
                 f"/bench/floor/django/agents/?owner={owner_id}"),
        Endpoint("agents: plain DRF list", "GET", f"/bench/floor/drf/agents/?owner={owner_id}"),
        Endpoint("`GET /api/v1/agents/`", "GET", "/api/v1/agents/", owner),
        Endpoint("messages: plain Django floor", "GET", f"/bench/floor/django/{messages}"),
        Endpoint("messages: plain DRF list", "GET", f"/bench/floor/drf/{messages}"),
        Endpoint("`GET /api/v1/conversations/{id}/messages/`", "GET", f"/api/v1/{messages}",
                 owner),
        Endpoint("`POST /api/v1/usage/events/` (one event)", "POST", "/api/v1/usage/events/",
                 {"authorization": f"Bearer {app_key}"}, usage_event, 202),
    ]  # fmt: skip


def profile_all(endpoints: list[Endpoint], requests: int, top: int) -> list[Profile]:
    """Time `requests` requests per endpoint in ROUNDS interleaved rounds (the median round
    counts), then profile as many more of each."""
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    callers = [_Caller(application, endpoint, itertools.count()) for endpoint in endpoints]
    for call in callers:
        call(WARM_UP)
    cpu: list[list[float]] = [[] for _ in callers]
    for number in range(ROUNDS):
        order = list(range(len(callers)))
        for index in order if number % 2 == 0 else reversed(order):
            started = time.thread_time()
            callers[index](requests)
            cpu[index].append((time.thread_time() - started) * 1000 / requests)
    return [
        Profile(endpoint, requests, statistics.median(times), _profiled(call, requests, top))
        for endpoint, call, times in zip(endpoints, callers, cpu, strict=True)
    ]


def _profiled(call: "_Caller", requests: int, top: int) -> list[FunctionCost]:
    profiler = cProfile.Profile()
    profiler.runcall(call, requests)
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{_short(filename)}:{line}({function})"
        if "bench/cpu_profile.py" in where or "_lsprof" in where:
            continue  # the profiler's own entry and our caller
        rows.append(
            FunctionCost(
                where=where,
                calls_per_request=calls / requests,
                own_ms=own * 1000 / requests,
                cumulative_ms=cumulative * 1000 / requests,
            )
        )
    rows.sort(key=lambda row: row.cumulative_ms, reverse=True)
    return rows[:top]


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    if filename.startswith("~"):
        return "builtins"
    from bench.run import ROOT

    return filename.removeprefix(str(ROOT) + "/")


def report(profiles: list[Profile]) -> str:
    """The CPU per request of each endpoint, then each one's top functions."""
    lines = [
        "| endpoint (in process, no network) | CPU per request |",
        "| --- | ---: |",
    ]
    lines += [f"| {p.endpoint.name} | {p.cpu_ms:.2f} ms |" for p in profiles]
    for p in profiles:
        lines += [
            "",
            f"Profile of {p.endpoint.name}: {p.endpoint.method} {p.endpoint.path} "
            f"({p.requests} requests, {p.cpu_ms:.2f} ms CPU each without the profiler; "
            "wall time per request under cProfile)",
            "",
            "| cumulative ms | own ms | calls | function |",
            "| ---: | ---: | ---: | --- |",
        ]
        lines += [
            f"| {row.cumulative_ms:.3f} | {row.own_ms:.3f} | {row.calls_per_request:g} | "
            f"`{row.where}` |"
            for row in p.top
        ]
    return "\n".join(lines)


def main() -> None:
    """Profile the hot endpoints on the data of the last `make bench` run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint (300)")
    parser.add_argument("--top", type=int, default=25, help="functions shown per endpoint (25)")
    parser.add_argument("--only", default="", help="profile endpoints whose name has this text")
    arguments = parser.parse_args()

    from bench import dataset
    from bench import usage_ingest as ingest
    from bench.run import AGENTS_PER_OWNER, _env
    from tests.stack_auth import StackAuthFake

    # A project of its own: two profiles at once (an A/B of two commits) then share no JWKS.
    stack_auth = StackAuthFake(project_id=f"bench-{uuid.uuid4().hex[:8]}")
    os.environ["STACK_AUTH_API_URL"] = stack_auth.serve()
    os.environ["STACK_AUTH_PROJECT_ID"] = stack_auth.project_id
    _env(ingest.BENCH_CACHE_URL)
    ingest.setup_django()
    dataset.lift_rate_limits()
    owner_id = dataset.owner_with_agents(AGENTS_PER_OWNER)
    _, key = ingest.new_agent(f"bench-profile-{uuid.uuid4().hex[:8]}")
    endpoints = hot_endpoints(
        owner_id=owner_id, conversation_id=dataset.long_conversation(owner_id),
        token=stack_auth.token(owner_id, exp_in=3600), app_key=key,
    )  # fmt: skip
    chosen = [e for e in endpoints if arguments.only in e.name]
    print(report(profile_all(chosen, arguments.requests, arguments.top)))
    stack_auth.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    main()
