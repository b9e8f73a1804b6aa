"""Serve Django from an event loop that takes each request whole before a thread runs it.

gunicorn's threaded worker hands a connection to a thread as soon as it is readable, and the
thread then waits for whatever the client sends: a few clients that announce a body and stall
hold every thread, and the server stops answering. Here (gunicorn's worker class
`a1zap.server.Worker`, set in `a1zap/gunicorn_conf.py`) uvicorn's event loop reads each
request, headers and body, under deadlines and the body limit; only a request that has
arrived whole goes to one of the worker's THREADS threads, which runs Django's WSGI handler
as gthread did. One thread serves the whole request, so database connections stay one per
thread and Django's `request_started`/`request_finished` (which close stale and, with
CONN_MAX_AGE=0, all connections) run on the thread that used them. The response is taken
from Django whole and written by the event loop, so a slow reader holds no thread either;
only a response larger than RESPONSE_BUFFER_BYTES (a streamed export) is passed on chunk by
chunk, its thread waiting for the client at most REQUEST_BODY_TIMEOUT for each chunk.

Refusals, in the API's error shape, each closing the connection:
- headers not complete within REQUEST_HEADER_TIMEOUT: 408 `request_timeout` (a connection
  that sends nothing is closed silently);
- headers over HEADERS_MAX_BYTES: 431 `headers_too_large`;
- a body announced (Content-Length) or found (chunked) larger than
  DATA_UPLOAD_MAX_MEMORY_SIZE: 413 `payload_too_large`, without waiting for the rest;
- a body not complete within REQUEST_BODY_TIMEOUT of its headers: 408 `request_timeout`.
"""

import asyncio
import functools
import io
import json
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn_worker import UvicornWorker

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Coroutine[Any, Any, None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# A response up to this size is written by the event loop after its thread is free again.
RESPONSE_BUFFER_BYTES = 1024 * 1024
# The request line and headers together (nginx allows 32 KiB by default).
HEADERS_MAX_BYTES = 64 * 1024
# After refusing a request whose client is still sending, read and drop what it sends for at
# most this long before closing: closing with unread data makes the kernel reset the
# connection, which can destroy the refusal before the client reads it.
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class RequestLimits:
    header_timeout: float
    body_timeout: float
    max_body: int


@functools.cache
def request_limits() -> RequestLimits:
    """Read the limits from Django's settings (configured by the time a request arrives)."""
    from django.conf import settings

    return RequestLimits(
        header_timeout=settings.REQUEST_HEADER_TIMEOUT,
        body_timeout=settings.REQUEST_BODY_TIMEOUT,
        max_body=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    )


def error_body(code: str, detail: str) -> bytes:
    return json.dumps({"code": code, "detail": detail}).encode()


REFUSALS = {
    408: ("request_timeout", "The request did not arrive in time."),
    413: ("payload_too_large", "The request body is too large."),
    431: ("headers_too_large", "The request headers are too large."),
    500: ("server_error", "Something went wrong on our side."),
}


# --- The connection: deadlines and bounds on headers --------------------------------------------


class LingeringTransport:
    """The connection's transport, whose close() first lets an unread request drain."""

    def __init__(self, transport: Any, protocol: "HttpProtocol") -> None:
        self._transport = transport
        self._protocol = protocol
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.is_closing():
            return
        if not self._protocol.client_may_be_sending() or not self._transport.can_write_eof():
            self._transport.close()
            return
        self.lingering = True
        self._transport.write_eof()  # after what is buffered: the client reads it all
        self._transport.resume_reading()
        self._protocol.loop.call_later(LINGER_SECONDS, self._transport.close)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size bound on each request's headers.

    The header clock starts when the connection opens, or at the first byte of a further
    request on it (idle time between requests is gunicorn's `keepalive`).
    """

    transport: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_deadline: asyncio.TimerHandle | None = None
        self.reading_headers = True
        self.header_bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(LingeringTransport(transport, self))  # type: ignore[arg-type]
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # a refused request still arriving: drop it
        if self.reading_headers:
            self.header_bytes += len(data)
        super().data_received(data)
        if self.reading_headers and self.header_bytes > HEADERS_MAX_BYTES:
            self._refuse(431)

    def client_may_be_sending(self) -> bool:
        """Whether the current request may still have bytes on their way."""
        if self.reading_headers:
            return self.header_bytes > 0
        return self.cycle is not None and self.cycle.more_body

    # Parser callbacks (httptools calls them from data_received).
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.header_deadline is None:
            self._start_header_clock()

    def on_headers_complete(self) -> None:
        self.reading_headers = False
        self._stop_header_clock()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_headers, self.header_bytes = True, 0

    def _start_header_clock(self) -> None:
        self.header_deadline = self.loop.call_later(
            request_limits().header_timeout, self._headers_timed_out
        )

    def _stop_header_clock(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_timed_out(self) -> None:
        self.header_deadline = None
        if self.header_bytes:
            self._refuse(408)
        else:
            self.transport.close()  # nothing was asked: nothing to answer

    def _refuse(self, status: int) -> None:
        self._stop_header_clock()
        if self.transport.is_closing():
            return
        code, detail = REFUSALS[status]
        logger.warning("Refused %s from %s: %s", status, self.client, code)
        body = error_body(code, detail)
        head = [STATUS_LINE[status]]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


# --- The request: read whole in the event loop, then run on a thread -----------------------------


class BufferedWSGI:
    """An ASGI application that runs a WSGI one on a fixed pool of threads, each request whole."""

    def __init__(self, wsgi: WSGIApp, threads: int = 2) -> None:
        self.wsgi = wsgi
        self.threads = threads  # gunicorn's THREADS (the worker sets it before serving)
        self._executor: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="request")
        return self._executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # no WebSockets: the worker does not accept them
            raise ValueError(f"unsupported ASGI scope {scope['type']!r}")
        limits = request_limits()
        body = await read_body(scope, receive, send, limits)
        if body is None:
            return
        environ = wsgi_environ(scope, body)
        loop = asyncio.get_running_loop()
        gone = threading.Event()
        watcher = loop.create_task(_watch_disconnect(receive, gone))
        exchange = Exchange(self.wsgi, environ, loop, send, gone, limits.body_timeout)
        try:
            # In the thread's own context, as under gthread: Django keeps per-thread state
            # there (each thread's cache clients and their Redis connections, for one).
            reply = await loop.run_in_executor(self.executor, exchange.run)
        finally:
            watcher.cancel()
        if reply is not None:
            status, headers, content = reply
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _ = self.executor
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # uvicorn has let every request finish (or given up on them) by now.
                if self._executor is not None:
                    self._executor.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # the parser has refused a non-numeric one already
    return None


async def refuse(send: Send, status: int) -> None:
    body = error_body(*REFUSALS[status])
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)), (b"connection", b"close")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def read_body(scope: Scope, receive: Receive, send: Send,
                    limits: RequestLimits) -> bytes | None:  # fmt: skip
    """Return the whole body, or answer (413, 408) or see the client leave and return None."""
    declared = declared_length(scope["headers"])
    if declared is not None and declared > limits.max_body:
        await refuse(send, 413)  # before any of it is read (nor `100 Continue` sent)
        return None
    body = bytearray()
    refusal = None
    try:
        async with asyncio.timeout(limits.body_timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                body += message.get("body", b"")
                if len(body) > limits.max_body:
                    refusal = 413
                    break
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        refusal = 408
    if refusal:
        await refuse(send, refusal)
        return None
    return bytes(body)


async def _watch_disconnect(receive: Receive, gone: threading.Event) -> None:
    """Tell the request's thread when the client leaves (it then stops streaming)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ of a request, as gunicorn builds it (PEP 3333)."""
    root_path = scope.get("root_path", "")
    raw_path = scope.get("raw_path") or scope["path"].encode()
    if root_path and raw_path.startswith(root_path.encode()):
        raw_path = raw_path[len(root_path.encode()) :]
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root_path.encode().decode("latin-1"),
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if "_" in name:
            # As gunicorn: `X_Forwarded_For` would pose as `X-Forwarded-For` in the environ.
            continue
        if name in ("content-length", "transfer-encoding"):
            continue  # the body is whole now: its length is below
        value = raw_value.decode("latin-1")
        key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    if body or declared_length(scope["headers"]) is not None:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


class Exchange:
    """One request on its thread: run the WSGI app, collect (or stream) its response."""

    def __init__(self, wsgi: WSGIApp, environ: dict[str, Any], loop: asyncio.AbstractEventLoop,
                 send: Send, gone: threading.Event, send_timeout: float) -> None:  # fmt: skip
        self.wsgi, self.environ, self.loop, self.send = wsgi, environ, loop, send
        self.gone, self.send_timeout = gone, send_timeout
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.streaming = False

    def run(self) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """Return the whole response to write, or None once it was streamed (or abandoned)."""
        try:
            result = self.wsgi(self.environ, self.start_response)
        except Exception:
            logger.exception("The WSGI application failed")
            return self._server_error()
        try:
            for chunk in result:
                if self.gone.is_set():
                    return None
                self.write(chunk)
            if self.streaming:
                self._push({"type": "http.response.body", "body": b""})
                return None
            return self.status, self._with_length(self.headers), b"".join(self.chunks)
        except _Abandoned:
            return None
        except Exception:
            if self.streaming:
                raise  # half sent: uvicorn closes the connection
            logger.exception("The WSGI application failed while answering")
            return self._server_error()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # Django sends request_finished here, on this thread

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:  # fmt: skip
        if exc_info is not None and self.streaming:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status.split(" ", 1)[0])
        self.headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]
        return self.write

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.streaming:
            self._push({"type": "http.response.body", "body": chunk, "more_body": True})
            return
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.size > RESPONSE_BUFFER_BYTES:
            # Too large to hold: pass it on as it comes, at the client's pace.
            self.streaming = True
            self._push({"type": "http.response.start", "status": self.status,
                        "headers": self.headers})  # fmt: skip
            self._push({"type": "http.response.body", "body": b"".join(self.chunks),
                        "more_body": True})  # fmt: skip
            self.chunks = []

    def _push(self, message: Message) -> None:
        future = asyncio.run_coroutine_threadsafe(self.send(message), self.loop)
        try:
            future.result(timeout=self.send_timeout)
        except FutureTimeout:
            future.cancel()
            logger.warning("Gave up a response the client did not read for %ss", self.send_timeout)
            raise _Abandoned from None

    def _with_length(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        if self.status in (204, 304) or self.status < 200:
            return headers
        if any(name == b"content-length" for name, _ in headers):
            return headers
        return [*headers, (b"content-length", b"%d" % self.size)]

    def _server_error(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = error_body(*REFUSALS[500])
        return 500, [(b"content-type", b"application/json"),
                     (b"content-length", b"%d" % len(body))], body  # fmt: skip


class _Abandoned(Exception):
    """The client stopped reading a streamed response."""


# --- The gunicorn worker ------------------------------------------------------------------------


class Worker(UvicornWorker):
    """uvicorn's gunicorn worker, with the protocol above and gunicorn's settings applied."""

    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": HttpProtocol,
        "ws": "none",
        "lifespan": "on",
        # The client address is the TCP peer, as under gthread: which X-Forwarded-For entry
        # to trust is Django's decision (the number of trusted proxy hops), not the server's.
        "proxy_headers": False,
        "server_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout
        # More open connections than this per worker get 503 (gunicorn's worker_connections).
        self.config.limit_concurrency = self.cfg.worker_connections

    def load_wsgi(self) -> None:
        super().load_wsgi()
        if isinstance(self.wsgi, BufferedWSGI):
            self.wsgi.threads = self.cfg.threads
