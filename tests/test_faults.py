"""Faults: the database or the cache goes away under a running server, then comes back.

The real server (gunicorn with a1zap/gunicorn_conf.py, as `make run` starts it) serves the app,
connected to PostgreSQL and Redis through TCP proxies that the test cuts and restores (the
shared services keep running for every other test). While a
dependency is gone the server answers 503 with a code; afterwards it recovers by itself
(health-checked persistent connections), and every write it acknowledged is in the database.
"""

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from agents.services import agent_create
from tests.live_server import LiveServer, sessions_end_on_their_own
from tests.tcp_proxy import TcpProxy
from usage.models import AgentUsage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_plans")]


class Server:
    def __init__(self, port: int, database: TcpProxy, cache: TcpProxy) -> None:
        self.port, self.database, self.cache = port, database, cache

    def request(self, method: str, path: str, body: Any = None, key: str = "") -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, json.loads(payload) if payload else None

    def wait_until_ready(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("the server did not become ready")


@pytest.fixture
def server(tmp_path: Any) -> Iterator[Server]:
    database = settings.DATABASES["default"]
    db_proxy = TcpProxy(int(database.get("PORT") or 5432), database.get("HOST") or "127.0.0.1")
    cache_location = settings.CACHES["default"]["LOCATION"]
    cache_db = cache_location.rsplit("/", 1)[-1]
    cache_proxy = TcpProxy(6379)
    live = LiveServer(
        {
            "WORKERS": "1",
            "THREADS": "2",
            "DATABASE_URL": (
                f"postgres://{database['USER']}@127.0.0.1:{db_proxy.port}/{database['NAME']}"
            ),
            "CACHE_URL": f"redis://127.0.0.1:{cache_proxy.port}/{cache_db}",
        },
        tmp_path / "gunicorn.log",
    )
    running = Server(live.port, db_proxy, cache_proxy)
    try:
        running.wait_until_ready()
        yield running
    finally:
        live.stop()
        db_proxy.close()
        cache_proxy.close()
        sessions_end_on_their_own()


def app_key(handle: str) -> tuple[Any, str]:
    agent, key = agent_create(owner_id=f"owner_{handle}", name="F", handle=handle,
                              agent_type="work")  # fmt: skip
    return agent, key


def send(server: Server, key: str, event_id: str) -> tuple[int, Any]:
    return server.request("POST", "/api/v1/usage/events/", {"id": event_id, "messages": 1}, key)


def counted(agent: Any) -> int:
    connection.close()  # read what the server committed, on a fresh connection
    return sum(AgentUsage.objects.filter(agent=agent).values_list("message_count", flat=True))


def test_a_database_outage_answers_503_then_recovers_and_loses_nothing(server: Server) -> None:
    agent, key = app_key("fault_db")
    acknowledged = sum(send(server, key, f"before-{n}")[0] == 202 for n in range(5))

    server.database.cut()
    during = [send(server, key, f"during-{n}") for n in range(3)]
    ready_during = server.request("GET", "/readyz")
    server.database.restore()
    server.wait_until_ready()
    acknowledged += sum(send(server, key, f"after-{n}")[0] == 202 for n in range(5))

    assert acknowledged == 10
    for status, body in during:
        assert (status, body["code"]) == (503, "service_unavailable")
    assert ready_during[0] == 503
    assert ready_during[1]["checks"]["database"] is False
    assert counted(agent) == acknowledged


def test_a_cache_outage_keeps_the_api_up_and_readiness_says_so(server: Server) -> None:
    agent, key = app_key("fault_cache")

    server.cache.cut()
    during = [send(server, key, f"no-cache-{n}") for n in range(3)]
    ready_during = server.request("GET", "/readyz")
    server.cache.restore()
    server.wait_until_ready()

    assert [status for status, _ in during] == [202, 202, 202]  # rate limits fail open
    assert ready_during[0] == 503
    assert ready_during[1]["checks"]["cache"] is False
    assert counted(agent) == 3


def test_an_acknowledged_write_survives_a_cut_right_after_it(server: Server) -> None:
    agent, key = app_key("fault_ack")

    status, body = send(server, key, "just-before-the-cut")
    server.database.cut()
    server.database.restore()
    server.wait_until_ready()

    assert (status, body["accepted"]) == (202, 1)
    assert counted(agent) == 1
