"""A local HTTP server in a daemon thread, the base of the fakes of outside services."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalHttpServer:
    """Serve `_handler_class()` on 127.0.0.1 at a free port: `serve()`, `base_url`, `stop()`."""

    thread_name = "local-http"

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """Return the server's URL (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("Call serve() first.")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self) -> str:
        """Start the server on a free local port (once) and return its base URL."""
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
            self._server.daemon_threads = True
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=self.thread_name, daemon=True
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop the server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
