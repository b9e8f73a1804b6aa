"""PostgreSQL advisory locks on names, held by the session (not a transaction).

Session locks are for work that must not hold a transaction open while it waits on the
outside world (a Stripe call): the lock is held across it, and released at the end, or by
PostgreSQL when the connection goes (a worker killed mid-task frees its locks).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# hashtextextended gives a 64-bit key for any name; names share PostgreSQL's one key space,
# so each caller prefixes its own ("stripe-order:", "scheduled:", ...).
_KEY = "hashtextextended(%s, 0)"


@contextmanager
def advisory_lock(name: str) -> Iterator[None]:
    """Hold the lock named `name` for the block, waiting for it if another session has it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_advisory_lock({_KEY})", [name])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_unlock({_KEY})", [name])


@contextmanager
def advisory_lock_if_free(name: str) -> Iterator[bool]:
    """Take the lock named `name` if no other session holds it; yield whether it was taken."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({_KEY})", [name])
        row = cursor.fetchone()
    taken = bool(row and row[0])
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({_KEY})", [name])
