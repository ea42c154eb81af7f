"""Detection with no process of ours alive: pg_cron runs drift.evaluate() every minute.

Supabase ships pg_cron (Database → Extensions); elsewhere it is a server package
(postgresql-NN-cron) that must be in shared_preload_libraries.
"""

from __future__ import annotations

from typing import Any

import psycopg

from driftloop import named_sql
from driftloop.errors import DriftloopError

JOB_NAME = "driftloop-evaluate"
EVERY_MINUTE = "* * * * *"
COMMAND = "SELECT count(*) FROM drift.evaluate()"
_sql = named_sql.beside(__file__, "cron.sql")


def _ensure_pg_cron(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(_sql("installed")).fetchone()
    assert row is not None
    installed, available = row
    if installed:
        return
    if not available:
        raise DriftloopError(
            "pg_cron is missing: this server does not have the extension (on Supabase enable it under"
            " Database → Extensions; elsewhere install postgresql-NN-cron and add pg_cron to shared_preload_libraries)"
        )
    try:
        with conn.transaction():
            conn.execute(_sql("create_extension"))
    except psycopg.Error as exc:
        raise DriftloopError(
            f"pg_cron is missing and could not be created: {exc.diag.message_primary or exc}"
        ) from None


def schedule(conn: psycopg.Connection[Any]) -> int:
    """Registers (or updates) the job; returns its pg_cron job id."""
    _ensure_pg_cron(conn)
    params = {"name": JOB_NAME, "schedule": EVERY_MINUTE, "command": COMMAND}
    in_database = conn.execute(_sql("has_schedule_in_database")).fetchone()
    row = conn.execute(
        _sql("schedule_in_database" if in_database and in_database[0] else "schedule"), params
    ).fetchone()
    assert row is not None
    return int(row[0])


def unschedule(conn: psycopg.Connection[Any]) -> bool:
    """Removes the job; returns whether there was one."""
    _ensure_pg_cron(conn)
    if conn.execute(_sql("job"), {"name": JOB_NAME}).fetchone() is None:
        return False
    conn.execute(_sql("unschedule"), {"name": JOB_NAME})
    return True
