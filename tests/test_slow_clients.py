"""Slow clients: a request reaches a worker thread only once it has arrived whole.

The real server (`gunicorn -c a1zap/gunicorn_conf.py`, as `make run` and production start it)
runs in a subprocess. Connections that announce a body and then stall must not hold the
threads that serve everyone else; a request that stalls past its deadline gets 408, one whose
body is larger than the limit gets 413 without being read. Wall-clock bounds are generous:
what a test tells apart is milliseconds against the seconds a held thread would cost.
"""

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from a1zap.server import RESPONSE_BUFFER_BYTES
from agents.services import agent_create
from conversations.models import Message
from tests.factories import ConversationFactory
from tests.live_server import LiveServer, database_url
from tests.stack_auth import StackAuthFake
from usage.models import AgentUsage

WORKERS, THREADS = 2, 2
SLOW_CLIENTS = 16  # more than WORKERS x THREADS, on any spread over the workers
STRICT_LIMIT = 64 * 1024  # the strict server's DATA_UPLOAD_MAX_MEMORY_SIZE
APPLICATION = "a1zap-slow-clients"


@pytest.fixture(scope="module")
def server(django_db_setup: None, stack_auth_server: StackAuthFake,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:  # fmt: skip
    """The server as configured by default (request timeouts of 10 s and 30 s)."""
    running = LiveServer(
        {"WORKERS": str(WORKERS), "THREADS": str(THREADS),
         "DATABASE_URL": database_url(application_name=APPLICATION),
         "STACK_AUTH_API_URL": stack_auth_server.base_url,
         "STACK_AUTH_PROJECT_ID": stack_auth_server.project_id,
         "STRIPE_WEBHOOK_SECRET": "whsec_test_a1zap_slow_clients"},
        tmp_path_factory.mktemp("server") / "gunicorn.log",
    )  # fmt: skip
    try:
        running.wait_until()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def strict(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with one-second request timeouts, a small body limit and no kept connections."""
    running = LiveServer(
        {"WORKERS": "1", "THREADS": "2", "REQUEST_HEADER_TIMEOUT": "1",
         "REQUEST_BODY_TIMEOUT": "1", "DATA_UPLOAD_MAX_MEMORY_SIZE": str(STRICT_LIMIT),
         "CONN_MAX_AGE": "0",
         "DATABASE_URL": database_url(application_name=f"{APPLICATION}-strict")},
        tmp_path_factory.mktemp("strict") / "gunicorn.log",
    )  # fmt: skip
    try:
        running.wait_until()
        yield running
    finally:
        running.stop()


def open_socket(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def post_head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, timeout: float) -> tuple[int, Any, float]:
    """Wait for the response on `sock`; return its status, body and how long it took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    response = http.client.HTTPResponse(sock)
    response.begin()
    payload = response.read()
    body = json.loads(payload) if payload.startswith(b"{") else payload
    return response.status, body, time.monotonic() - started


def timed_get(server: LiveServer, path: str) -> float:
    started = time.monotonic()
    try:
        status, _ = server.request("GET", path, timeout=15)
    except TimeoutError:
        return float("inf")
    assert status == 200
    return time.monotonic() - started


@contextlib.contextmanager
def stalled_uploads(server: LiveServer, count: int) -> Iterator[list[socket.socket]]:
    """Open `count` connections that announce a 100 kB body and send one byte of it, to the
    Stripe webhook: open to anyone, it reads the whole body before it can check anything."""
    sockets = []
    try:
        for _ in range(count):
            sock = open_socket(server)
            sock.sendall(post_head("/stripe/webhook/", Content_Length="100000") + b"{")
            sockets.append(sock)
        time.sleep(0.5)  # let the server accept and start on every one of them
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def app_key(handle: str) -> tuple[Any, str]:
    agent, key = agent_create(owner_id=f"owner_{handle}", name="S", handle=handle,
                              agent_type="work")  # fmt: skip
    return agent, key


def event(event_id: str) -> bytes:
    return json.dumps({"id": event_id, "messages": 1}).encode()


def server_connections(application: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            [application],
        )
        return int(cursor.fetchone()[0])


# --- Slow clients do not take the threads -------------------------------------------------------


def test_stalled_uploads_beyond_every_thread_delay_no_other_request(server: LiveServer) -> None:
    paths = ["/healthz", "/api/v1/handles/slowpoke/", "/healthz", "/healthz"]
    with stalled_uploads(server, SLOW_CLIENTS):
        elapsed = [(path, timed_get(server, path)) for path in paths]

    assert max(seconds for _, seconds in elapsed) < 2, (
        f"behind {SLOW_CLIENTS} stalled uploads: {elapsed} s"
    )


# --- Deadlines and limits ----------------------------------------------------------------------


def test_a_stalled_body_gets_408_after_the_body_timeout(strict: LiveServer) -> None:
    with open_socket(strict) as sock:
        sock.sendall(post_head("/api/v1/usage/events/", Content_Length="100") + b"{")
        status, body, elapsed = read_response(sock, timeout=15)

    assert (status, body["code"]) == (408, "request_timeout")
    assert 0.5 < elapsed < 10


def test_a_body_trickled_past_its_deadline_gets_408(strict: LiveServer) -> None:
    """The body timeout bounds the whole body, not each pause between its bytes."""
    with open_socket(strict) as sock:
        sock.sendall(post_head("/api/v1/usage/events/", Content_Length="100"))
        with contextlib.suppress(OSError):
            for _ in range(20):
                sock.sendall(b" ")
                time.sleep(0.2)
        status, body, _ = read_response(sock, timeout=15)

    assert (status, body["code"]) == (408, "request_timeout")


def test_stalled_headers_get_408_after_the_header_timeout(strict: LiveServer) -> None:
    with open_socket(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        status, body, elapsed = read_response(sock, timeout=15)

    assert (status, body["code"]) == (408, "request_timeout")
    assert 0.5 < elapsed < 10


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    strict: LiveServer,
) -> None:
    with open_socket(strict) as sock:
        sock.settimeout(15)
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed, without an answer to a request never made

    assert time.monotonic() - started < 5


def test_headers_beyond_the_limit_get_431(strict: LiveServer) -> None:
    with open_socket(strict) as sock:
        with contextlib.suppress(OSError):  # the server may close before it has them all
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for number in range(200):
                sock.sendall(f"X-Padding-{number}: {'x' * 1000}\r\n".encode())
        status, body, _ = read_response(sock, timeout=15)

    assert (status, body["code"]) == (431, "headers_too_large")


def test_an_announced_body_over_the_limit_gets_413_before_it_is_sent(strict: LiveServer) -> None:
    with open_socket(strict) as sock:
        sock.sendall(post_head("/api/v1/usage/events/", Content_Length=str(STRICT_LIMIT + 1)))
        status, body, elapsed = read_response(sock, timeout=15)

    assert (status, body["code"]) == (413, "payload_too_large")
    assert elapsed < 0.9  # well within the body timeout: nothing of the body was awaited


def test_a_chunked_body_over_the_limit_gets_413(strict: LiveServer) -> None:
    chunk = b" " * 8192
    with open_socket(strict) as sock:
        sock.sendall(post_head("/api/v1/usage/events/", Transfer_Encoding="chunked"))
        with contextlib.suppress(OSError):  # the server may close before it has it all
            for _ in range(STRICT_LIMIT // len(chunk) + 2):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, body, _ = read_response(sock, timeout=15)

    assert (status, body["code"]) == (413, "payload_too_large")


# --- Requests still reach Django whole, on a fixed pool of threads -------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_a_body_sent_in_pieces_reaches_django_whole(server: LiveServer) -> None:
    agent, key = app_key("slow_pieces")
    body = event("in-pieces")
    with open_socket(server) as sock:
        sock.sendall(
            post_head("/api/v1/usage/events/", Content_Length=str(len(body)),
                      Authorization=f"Bearer {key}")
        )  # fmt: skip
        for start in range(0, len(body), 8):
            sock.sendall(body[start : start + 8])
            time.sleep(0.05)
        status, _, _ = read_response(sock, timeout=15)

    assert status == 202
    assert AgentUsage.objects.filter(agent=agent).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_a_chunked_body_reaches_django_whole(server: LiveServer) -> None:
    agent, key = app_key("slow_chunked")
    body = event("chunked")
    with open_socket(server) as sock:
        sock.sendall(
            post_head("/api/v1/usage/events/", Transfer_Encoding="chunked",
                      Authorization=f"Bearer {key}")
        )  # fmt: skip
        for start in range(0, len(body), 10):
            piece = body[start : start + 10]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        status, _, _ = read_response(sock, timeout=15)

    assert status == 202
    assert AgentUsage.objects.filter(agent=agent).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_database_connections_stay_one_per_thread_under_concurrent_requests(
    server: LiveServer,
) -> None:
    _, key = app_key("slow_threads")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    statuses: list[int] = []

    def client(number: int) -> None:
        for sequence in range(3):
            status, _ = server.request("POST", "/api/v1/usage/events/",
                                       event(f"threads-{number}-{sequence}"), headers)  # fmt: skip
            statuses.append(status)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [202] * 36
    assert 1 <= server_connections(APPLICATION) <= WORKERS * THREADS


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_each_request_closes_its_connection_when_none_are_kept(strict: LiveServer) -> None:
    """With CONN_MAX_AGE=0, Django's request_finished closes the connection the request used,
    which only works if it runs on the thread that opened it."""
    _, key = app_key("slow_close")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    for number in range(6):
        status, _ = strict.request("POST", "/api/v1/usage/events/", event(f"close-{number}"),
                                   headers)  # fmt: skip
        assert status == 202

    deadline = time.monotonic() + 10
    while server_connections(f"{APPLICATION}-strict") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_connections(f"{APPLICATION}-strict") == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_plans")
def test_a_response_larger_than_the_buffer_is_streamed_whole(
    server: LiveServer, stack_auth: StackAuthFake
) -> None:
    conversation = ConversationFactory.create(agent__owner_id="owner_stream")
    contents = [f"{number:06d} " + "x" * 993 for number in range(2 * RESPONSE_BUFFER_BYTES // 1000)]
    Message.objects.bulk_create(
        Message(conversation=conversation, agent=conversation.agent, role="user", content=content)
        for content in contents
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request(
        "GET", f"/api/v1/conversations/{conversation.id}/export/?format=jsonl",
        headers={"x-stack-access-token": stack_auth.token("owner_stream")},
    )  # fmt: skip
    response = conn.getresponse()
    payload = response.read()
    conn.close()

    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"  # passed on as it came
    exported = [json.loads(line)["content"] for line in payload.decode().splitlines()]
    assert sorted(exported) == contents
