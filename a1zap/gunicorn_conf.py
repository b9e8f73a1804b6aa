"""gunicorn's configuration, for `make run` and production: `gunicorn -c a1zap/gunicorn_conf.py`.

Each worker process runs an event loop (uvicorn, through `a1zap.server.Worker`) that reads
every request whole, under deadlines, and then runs it on one of THREADS threads: a slow or
stalled client costs an open connection, never a thread. docs/scaling.md says how to size it.

Read from the environment: HOST and PORT (the address to bind), WORKERS (processes), THREADS
(request threads in each, and so database connections), KEEPALIVE (seconds an idle client
connection stays open: above the load balancer's idle timeout), WORKER_CONNECTIONS (open
connections per worker before it answers 503), ACCESS_LOG (where access lines go: `-` for
stdout, the default, or a path; empty for none). REQUEST_HEADER_TIMEOUT, REQUEST_BODY_TIMEOUT
and DATA_UPLOAD_MAX_MEMORY_SIZE are Django settings (a1zap/settings/base.py).
"""

import os

wsgi_app = "a1zap.asgi:application"
worker_class = "a1zap.server.Worker"
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WORKERS", "4"))
threads = int(os.environ.get("THREADS", "2"))
keepalive = int(os.environ.get("KEEPALIVE", "5"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
accesslog = os.environ.get("ACCESS_LOG", "-") or None
# gunicorn's control socket has one default path per user: concurrent servers on a machine
# (tests, the bench) would take it from each other, and nothing here uses it.
control_socket_disable = True


def post_worker_init(worker: object) -> None:
    """Move everything the worker has loaded (Django, the URLconf and every view it imports)
    out of the garbage collector's reach: a full collection otherwise walks those 200,000
    objects with the GIL held, stalling every request of the worker (in process, 84 ms
    against 2 ms once frozen; docs/scaling.md). Request garbage is still collected."""
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view now, not on a first request
    gc.collect()
    gc.freeze()
