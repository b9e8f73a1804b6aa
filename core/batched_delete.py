"""Delete old rows of a large table in batches, each in its own short transaction, so that a
prune never holds locks on millions of rows nor bloats one transaction."""

import datetime as dt

from django.db import connection, transaction


def delete_in_batches(
    *, table: str, key: tuple[str, ...], older: str, cutoff: dt.datetime, batch_size: int
) -> int:
    """Delete the rows of `table` whose `older` column is before `cutoff`, `batch_size` at a
    time (rows chosen by the columns of `key`, the primary key); count them.

    `table`, `key` and `older` are the caller's constants, never input.
    """
    columns = ", ".join(key)
    statement = (
        f"DELETE FROM {table} WHERE ({columns}) IN "  # noqa: S608 (constants only)
        f"(SELECT {columns} FROM {table} WHERE {older} < %s LIMIT %s)"
    )
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [cutoff, batch_size])
            batch = cursor.rowcount
        deleted += batch
        if batch < batch_size:
            return deleted
