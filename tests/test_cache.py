"""The Django cache on Redis: one client per process, reused by every call and thread."""

import threading
from typing import Any

from django.core.cache import caches

from core.cache import PooledRedisCache


def _client_seen_by_a_new_thread() -> Any:
    seen: list[Any] = []

    def look() -> None:
        backend: Any = caches["default"]
        seen.append(backend._cache.get_client())

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    return seen[0]


def test_the_settings_serve_the_redis_cache_through_the_pooled_backend() -> None:
    assert isinstance(caches["default"], PooledRedisCache)


def test_every_call_and_every_thread_uses_the_same_redis_client() -> None:
    backend: Any = caches["default"]
    backend.set("pooled", 1)

    first, second = backend._cache.get_client(), backend._cache.get_client(write=True)

    assert first is second
    assert _client_seen_by_a_new_thread() is first
    assert caches["default"].get("pooled") == 1
