"""The real server as `make run` starts it (`gunicorn -c a1zap/gunicorn_conf.py`), on a free port.

Tests that need a real server process (faults, slow clients) start it through here, so they
test the configuration production runs, not one of their own.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def database_url(**options: str) -> str:
    """Return a URL of the test database (for the server's environment), with `options`."""
    database = settings.DATABASES["default"]
    host, port = database.get("HOST") or "127.0.0.1", database.get("PORT") or 5432
    query = "&".join(f"{name}={value}" for name, value in options.items())
    return f"postgres://{database['USER']}@{host}:{port}/{database['NAME']}" + (
        f"?{query}" if query else ""
    )


class LiveServer:
    """One gunicorn master and its workers, started with `environment` on top of ours."""

    def __init__(self, environment: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.log_path = log_path
        cache_db = settings.CACHES["default"]["LOCATION"].rsplit("/", 1)[-1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "a1zap/gunicorn_conf.py"],
            cwd=settings.BASE_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "a1zap.settings.base",
                "DATABASE_URL": database_url(),
                "CACHE_URL": f"redis://127.0.0.1:6379/{cache_db}",
                "LOG_FORMAT": "text",
                **environment,
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
            },
            stdout=self.log,
            stderr=self.log,
        )

    def request(
        self, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None, timeout: float = 30,
    ) -> tuple[int, Any]:  # fmt: skip
        """Send one request on a new connection; return the status and the body (JSON or bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body, headers or {})
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(payload)
        return response.status, payload

    def wait_until(self, path: str = "/healthz", seconds: float = 30) -> None:
        """Return once `path` answers 200, or fail with the server's log."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.request("GET", path, timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.log.flush()
        raise AssertionError(f"the server did not answer {path}:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def sessions_end_on_their_own(seconds: float = 10) -> None:
    """Wait until no other session uses the test database.

    A server's PostgreSQL backends (or those behind a cut TCP proxy) end a moment after their
    client goes; until they have, the test database cannot be dropped at the end of the run.
    """
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            row = cursor.fetchone()
            if not row or row[0] == 0:
                return
            time.sleep(0.1)
