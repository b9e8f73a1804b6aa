"""Values a process may keep in its own memory for a while: bounded, each until a deadline.

For what the hot path would otherwise fetch from Redis or PostgreSQL on every request and
may briefly reuse (signing keys, verified tokens, plan rates). Shared by the threads of a
process; nothing here is shared between processes or hosts, so only values whose staleness
is bounded by their deadline belong here.
"""

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_every_cache: "weakref.WeakSet[LocalCache[object, object]]" = weakref.WeakSet()


class LocalCache(Generic[K, V]):
    """At most `max_entries` values, each until its deadline on `clock`; the least recently
    used goes first when it is full."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        _every_cache.add(self)  # type: ignore[arg-type]

    def get(self, key: K) -> V | None:
        """The value, or None when there is none or its deadline has passed."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def set(self, key: K, value: V, *, until: float) -> None:
        """Keep the value until `until` (a time on `clock`)."""
        if until <= self.clock():
            return
        with self._lock:
            self._entries[key] = (until, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def set_for(self, key: K, value: V, seconds: float) -> None:
        """Keep the value for `seconds` from now."""
        self.set(key, value, until=self.clock() + seconds)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def clear_local_caches() -> None:
    """Empty every LocalCache of the process (tests start each case with none)."""
    for cache in list(_every_cache):
        cache.clear()
