"""A local webhook receiver for the tests: it answers from a script (a status, or a pause
longer than the sender's timeout) and keeps what it received, headers and body."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.local_http import LocalHttpServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (past the sender's timeout: a timeout).
    pause: float = 0.0


class WebhookReceiver(LocalHttpServer):
    thread_name = "webhook-receiver"

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []
        self.script: list[Reply] = []
        self._lock = threading.Lock()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self.script.pop(0) if self.script else Reply()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                reply = receiver._next_reply()
                with receiver._lock:
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                if reply.pause:
                    time.sleep(reply.pause)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up (its timeout)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
