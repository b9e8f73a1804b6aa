"""HTTP load for the benchmarks: gunicorn as `make run` starts it (or the former gthread
server, to compare), wrk (or a Python client).

`wrk` (a C load generator, `apt-get install wrk`; `make bench` installs it) is preferred: on
two cores a Python client competes with the server for CPU and caps what it can measure.
Without wrk, a threaded http.client loop measures the same way, less precisely.
"""

import contextlib
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    client: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    workers: int
    threads: int

    def worker_pids(self) -> list[int]:
        """The worker processes: the children of gunicorn's master."""
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command may contain spaces or parentheses; fields follow the last ')'.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid:
                children.append(int(entry.name))
        return children

    def worker_memory_mib(self) -> tuple[float, float]:
        """(largest current RSS, largest peak RSS) over the workers, in MiB."""
        current = peak = 0.0
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            values = dict(
                line.split(":", 1) for line in status.splitlines() if line.startswith("Vm")
            )
            current = max(current, int(values["VmRSS"].split()[0]) / 1024)
            peak = max(peak, int(values["VmHWM"].split()[0]) / 1024)
        return current, peak

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


SERVERS = ("async", "gthread")


def gunicorn_command(
    server: str, port: int, workers: int, threads: int
) -> tuple[list[str], dict[str, str]]:
    """The command and environment that serve the project: `async` as `make run` does
    (a1zap/gunicorn_conf.py, without access log), `gthread` as it did before."""
    gunicorn = str(ROOT / ".venv/bin/gunicorn")
    if server == "async":
        environment = {"HOST": "127.0.0.1", "PORT": str(port), "WORKERS": str(workers),
                       "THREADS": str(threads), "ACCESS_LOG": ""}  # fmt: skip
        return [gunicorn, "-c", "a1zap/gunicorn_conf.py", "--log-level", "warning"], environment
    if server == "gthread":
        return [gunicorn, "a1zap.wsgi:application", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--threads", str(threads), "--log-level", "warning",
                "--no-control-socket"], {}  # fmt: skip
    raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")


def start_gunicorn(port: int, workers: int, threads: int, env: dict[str, str],
                   server: str = "async") -> Server:  # fmt: skip
    """Serve the project on `port` with `server` (gunicorn_command); wait until it answers."""
    command, environment = gunicorn_command(server, port, workers, threads)
    process = subprocess.Popen(  # noqa: S603 (our own gunicorn and arguments)
        command, cwd=ROOT, env={**env, **environment}
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return Server(process, port, workers, threads)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start within 60 s")


@dataclass(frozen=True)
class FreshResult:
    """Requests sent at once, each on a new connection (what a load balancer's check sees)."""

    asked: int
    latencies_ms: list[float]
    timeout_s: float

    def __str__(self) -> str:
        if not self.latencies_ms:
            return f"**0 of {self.asked} answered within {self.timeout_s:g} s**"
        answered = len(self.latencies_ms)
        flag = "**" if answered < self.asked else ""
        return (
            f"{flag}{answered} of {self.asked} answered within {self.timeout_s:g} s{flag}, "
            f"p50 {statistics.median(self.latencies_ms):,.1f} ms, "
            f"slowest {max(self.latencies_ms):,.1f} ms"
        )


def fresh_gets(server: Server, path: str, count: int, timeout: float) -> FreshResult:
    """GET `path` `count` times at once, each on a new connection, waiting at most `timeout`."""
    latencies: list[float] = []

    def one() -> None:
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            connection.close()
        except OSError:
            return
        if response.status == 200:
            latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return FreshResult(count, latencies, timeout)


@contextlib.contextmanager
def stalled_uploads(server: Server, count: int) -> Iterator[None]:
    """Hold `count` connections that announce a 100 kB body and send one byte of it."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(
                b"POST /api/v1/usage/events/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
            )
            sockets.append(sock)
        time.sleep(0.5)
        yield
    finally:
        for sock in sockets:
            sock.close()


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _run_wrk(url: str, headers: dict[str, str], clients: int, seconds: float,
             script: str | None) -> LoadResult:  # fmt: skip
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "--timeout", "30s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    if script:
        command += ["-s", lua.name]
    command.append(url)
    try:
        output = subprocess.run(  # noqa: S603 (wrk with our own arguments)
            command, capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(lua.name)
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE))
    counted = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    if counted is None or "99" not in percentiles:
        # Nothing came back in time: report it as failures rather than stop the run.
        print(f"wrk measured nothing for {url}:\n{output}", file=sys.stderr)
        return LoadResult(0, seconds, 0.0, 0.0, failures=clients, client="wrk")
    failures = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: .*?timeout (\d+)", output)
    return LoadResult(
        requests=int(counted.group(1)),
        seconds=_milliseconds(counted.group(2)) / 1000,
        p50_ms=_milliseconds(percentiles["50"]),
        p99_ms=_milliseconds(percentiles["99"]),
        failures=(int(failures.group(1)) if failures else 0)
        + (int(errors.group(1)) if errors else 0),
        client="wrk",
    )


def _run_python(port: int, method: str, path: str, headers: dict[str, str], clients: int,
                seconds: float, body: "BodyFactory | None") -> LoadResult:  # fmt: skip
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sequence = 0
        while time.perf_counter() < stop_at:
            sequence += 1
            payload = body(index, sequence) if body else None
            started = time.perf_counter()
            connection.request(method, path, payload, headers)
            response = connection.getresponse()
            response.read()
            latencies[index].append((time.perf_counter() - started) * 1000)
            if response.status >= 300:
                failures[index] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    everything = sorted(value for values in latencies for value in values)
    quantiles = statistics.quantiles(everything, n=100) if len(everything) > 1 else [0.0] * 99
    return LoadResult(
        requests=len(everything),
        seconds=elapsed,
        p50_ms=quantiles[49],
        p99_ms=quantiles[98],
        failures=sum(failures),
        client="python",
    )


class BodyFactory:
    """Make the body of the n-th request of a client (Python client only)."""

    def __call__(self, client: int, sequence: int) -> str:
        raise NotImplementedError


def get(server: Server, path: str, headers: dict[str, str], clients: int,
        seconds: float) -> LoadResult:  # fmt: skip
    """GET `path` from `clients` concurrent connections for `seconds`."""
    if wrk_available():
        return _run_wrk(f"http://127.0.0.1:{server.port}{path}", headers, clients, seconds, None)
    return _run_python(server.port, "GET", path, headers, clients, seconds, None)


# One Lua state (wrk -t1), so the counter makes every id new. Headers are built per request
# so that Content-Length always matches the body.
SINGLE_EVENT_LUA = """
local counter = 0
request = function()
  counter = counter + 1
  local at = os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", os.time() - (counter %% 28) * 86400)
  local body = string.format(
    '{"id":"%(prefix)s-%%09d","timestamp":"%%s","messages":1,"api_calls":2,"compute_seconds":3}',
    counter, at)
  local headers = {}
  headers["Authorization"] = "Bearer %(key)s"
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "/api/v1/usage/events/", headers, body)
end
"""


class SingleEvent(BodyFactory):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, client: int, sequence: int) -> str:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - sequence % 28 * 86400))
        return (
            f'{{"id":"{self.prefix}-{client}-{sequence}","timestamp":"{at}",'
            '"messages":1,"api_calls":2,"compute_seconds":3}'
        )


def post_single_events(server: Server, key: str, prefix: str, clients: int,
                       seconds: float) -> LoadResult:  # fmt: skip
    """POST one usage event per request, each with a new id, for `seconds`."""
    if wrk_available():
        script = SINGLE_EVENT_LUA % {"prefix": prefix, "key": key}
        url = f"http://127.0.0.1:{server.port}/api/v1/usage/events/"
        return _run_wrk(url, {}, clients, seconds, script)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return _run_python(
        server.port, "POST", "/api/v1/usage/events/", headers, clients, seconds,
        SingleEvent(prefix),
    )  # fmt: skip
