"""Migration 0002_worker: applies, documents everything it adds, and its down.sql undoes it exactly."""

from __future__ import annotations

from typing import Any

import psycopg

from driftloop import migrations

SNAPSHOT = """
SELECT 'column', table_name || '.' || column_name || ' ' || data_type || ' ' || coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = 'drift'
UNION ALL SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'drift'
UNION ALL SELECT 'function', p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'drift'::regnamespace
ORDER BY 1, 2
"""


def snapshot(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute(SNAPSHOT).fetchall()]


def test_every_worker_table_column_and_function_is_documented(conn: psycopg.Connection[Any]) -> None:
    undocumented = conn.execute("""
        SELECT c.relname || '.' || a.attname
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'drift'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
          AND (c.relname IN ('action_runs', 'prompt_versions')
               OR (c.relname = 'drift_events' AND a.attname IN ('attempts', 'max_attempts', 'run_after',
                   'claimed_by', 'claimed_at', 'lease_expires_at', 'last_error', 'resolution'))
               OR (c.relname = 'model_versions' AND a.attname = 'parameters'))
          AND col_description(c.oid, a.attnum) IS NULL
        UNION ALL
        SELECT p.proname FROM pg_proc p
        WHERE p.pronamespace = 'drift'::regnamespace AND p.proname LIKE '%prompt%'
          AND obj_description(p.oid, 'pg_proc') IS NULL
        UNION ALL
        SELECT relname FROM pg_class WHERE relnamespace = 'drift'::regnamespace
          AND relname IN ('action_runs', 'prompt_versions') AND obj_description(oid, 'pg_class') IS NULL
    """).fetchall()
    assert undocumented == []
    functions = {
        r[0]
        for r in conn.execute(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'drift'::regnamespace AND proname LIKE '%prompt%'"
        )
    }
    assert functions == {"active_prompt", "activate_prompt", "rollback_prompt"}


def test_downgrade_removes_the_worker_schema_and_upgrade_restores_it(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = snapshot(conn)
    migrations.downgrade("0001_engine", db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('drift.action_runs')").fetchone() == (None,)
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'drift' "
                "AND table_name = 'drift_events'"
            )
        }
        assert "claimed_by" not in columns and "status" in columns
    migrations.upgrade(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert snapshot(conn) == before
