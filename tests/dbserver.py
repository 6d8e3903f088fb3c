"""A second PostgreSQL connection to the test database, beside Django's: to look from outside a
connection's transaction, or to act on its server process."""

from __future__ import annotations

from typing import Any

from django.db import connection


def second_connection() -> Any:
    """A psycopg connection (autocommit) to the database Django's connection uses; close it (`with`)."""
    import psycopg

    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        autocommit=True,
    )


def terminate_own_backend() -> None:
    """Kill, from a second connection, the PostgreSQL server process behind Django's connection
    (as a failover, a restart or a network cut would)."""
    pid = connection.connection.info.backend_pid
    with second_connection() as other:
        # PostgreSQL 14+: wait (up to 5 s) until the process is gone.
        assert other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone() == (True,)
