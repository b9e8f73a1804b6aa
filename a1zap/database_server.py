"""Reach the PostgreSQL server behind DATABASE_URL before Django needs it.

Used by `manage.py ensure_database` and by the test suite's start, so that a server that is
down gives one clear line naming DATABASE_URL instead of a traceback.
"""

from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql


class DatabaseServerUnreachableError(Exception):
    """The PostgreSQL server named by DATABASE_URL does not answer."""


def _connect_kwargs(database: dict[str, Any], dbname: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "dbname": dbname,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "connect_timeout": 5,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


def describe_server(database: dict[str, Any]) -> str:
    host = database.get("HOST") or "local socket"
    port = database.get("PORT") or 5432
    return f"{host}:{port}"


def ensure_database_exists(*, create: bool = True) -> bool:
    """Connect to the server and create the configured database if missing.

    Return True when the database was created. Raise DatabaseServerUnreachableError with a
    one-line reason when the server cannot be reached.
    """
    database = settings.DATABASES["default"]
    name = database["NAME"]
    try:
        with psycopg.connect(**_connect_kwargs(database, "postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if exists or not create:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.errors.DuplicateDatabase:
        return False  # created by a concurrent run in the meantime
    except psycopg.OperationalError as error:
        lines = str(error).strip().splitlines() or ["no answer"]
        reason = lines[0].removeprefix("connection failed: ")
        raise DatabaseServerUnreachableError(
            f"Cannot reach PostgreSQL at {describe_server(database)} (DATABASE_URL): {reason}"
        ) from error
