"""LocalCache: what a process keeps in memory is bounded and never outlives its deadline."""

import threading

from core.local_cache import LocalCache, clear_local_caches


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_served_until_its_deadline_and_not_at_it() -> None:
    clock = Clock()
    cache: LocalCache[str, int] = LocalCache(10, clock)
    cache.set("k", 1, until=1010.0)

    clock.now = 1009.9
    before = cache.get("k")
    clock.now = 1010.0
    at = cache.get("k")

    assert (before, at) == (1, None)
    assert len(cache) == 0


def test_a_value_already_past_its_deadline_is_not_kept() -> None:
    clock = Clock()
    cache: LocalCache[str, int] = LocalCache(10, clock)

    cache.set("late", 1, until=999.0)
    cache.set_for("now", 2, 0)

    assert (cache.get("late"), cache.get("now"), len(cache)) == (None, None, 0)


def test_a_full_cache_forgets_the_least_recently_used_value() -> None:
    cache: LocalCache[str, int] = LocalCache(2, Clock())
    cache.set_for("a", 1, 60)
    cache.set_for("b", 2, 60)
    cache.get("a")  # now "b" is the least recently used

    cache.set_for("c", 3, 60)

    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)


def test_threads_filling_a_cache_never_leave_it_over_its_bound() -> None:
    cache: LocalCache[int, int] = LocalCache(50, Clock())

    def fill(offset: int) -> None:
        for n in range(1000):
            cache.set_for(offset + n, n, 60)
            cache.get(offset + n // 2)

    threads = [threading.Thread(target=fill, args=(k * 10_000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(cache) == 50


def test_clear_local_caches_empties_every_cache_of_the_process() -> None:
    first: LocalCache[str, int] = LocalCache(10, Clock())
    second: LocalCache[str, int] = LocalCache(10, Clock())
    first.set_for("a", 1, 60)
    second.set_for("b", 2, 60)

    clear_local_caches()

    assert (len(first), len(second)) == (0, 0)
