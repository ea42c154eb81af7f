"""Least privilege, for real: each role (driftloop's own and Supabase's anon / authenticated /
service_role, created here on the embedded server) sees only what it may, forbidden writes are
refused by Postgres, allowed inserts work. Row-level security is on for every table.

Roles are cluster-wide, so Supabase's are created once per server; the code layer is then
re-applied (`migrations.upgrade`, as after any release) so its grants and policies cover them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from driftloop import migrations
from driftloop.database import connect, with_dbname
from tests.support.helpers import DRIFTLOOP, free_port, insert_events, kill_group, wait_until, write_config

SUPABASE_ROLES = ("anon", "authenticated", "service_role")
CREATE_ROLES = """
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;
"""


@pytest.fixture(scope="module")
def roles_template(server_url: str, template_url: str) -> Iterator[str]:
    """A migrated database with Supabase's roles present and the security layer applied to them
    (re-applied once here; each test then copies it)."""
    from tests.conftest import TEMPLATE, _drop_database, _fresh_database

    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(CREATE_ROLES)
    name = _fresh_database(server_url, TEMPLATE)
    migrations.upgrade(with_dbname(server_url, name))
    yield name
    _drop_database(server_url, name)


@pytest.fixture
def db(server_url: str, roles_template: str) -> Iterator[psycopg.Connection[Any]]:
    from tests.conftest import _drop_database, _fresh_database

    name = _fresh_database(server_url, roles_template)
    _URLS[name] = with_dbname(server_url, name)
    with connect(_URLS[name], autocommit=True) as c:
        c.execute("UPDATE drift.settings SET value = '0' WHERE key = 'auto_baseline'")
        yield c
    _drop_database(server_url, name)


def db_url_of(conn: psycopg.Connection[Any]) -> str:
    """The URL of the connection's database (as the tests' fixtures build it)."""
    return _URLS[conn.info.dbname]


_URLS: dict[str, str] = {}


@contextmanager
def acting_as(conn: psycopg.Connection[Any], role: str, sub: str | None = None) -> Iterator[psycopg.Cursor[Any]]:
    """A transaction run as `role` (SET LOCAL ROLE), with JWT claims as PostgREST sets them."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f'SET LOCAL ROLE "{role}"')
        claims = {"role": role, **({"sub": sub} if sub else {})}
        cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield cur


def refused(conn: psycopg.Connection[Any], role: str, sql: str, params: Any = None, sub: str | None = None) -> str:
    """The error Postgres raises for `sql` run as `role` (a test failure when it succeeds)."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as info, acting_as(conn, role, sub) as cur:
        cur.execute(sql, params)
    return str(info.value)


def ids_visible(conn: psycopg.Connection[Any], role: str, sub: str | None = None) -> set[int]:
    with acting_as(conn, role, sub) as cur:
        cur.execute("SELECT id FROM drift.interaction_log")
        return {r[0] for r in cur.fetchall()}


def log_as(conn: psycopg.Connection[Any], role: str, model: str, sub: str | None = None, n: int = 1) -> None:
    with acting_as(conn, role, sub) as cur:
        cur.execute(
            "INSERT INTO drift.interaction_log (model, prompt, response)"
            " SELECT %s, 'q', 'a' FROM generate_series(1, %s)",
            (model, n),
        )
        cur.execute(
            "INSERT INTO drift.embeddings_log (model, embedding) SELECT %s, '[1,2,3]' FROM generate_series(1, %s)",
            (model, n),
        )


def owner_ids(conn: psycopg.Connection[Any], model: str) -> set[int]:
    return {r[0] for r in conn.execute("SELECT id FROM drift.interaction_log WHERE model = %s", (model,))}


def test_row_level_security_is_on_for_every_table(db: psycopg.Connection[Any]) -> None:
    tables = db.execute(
        "SELECT relname, relrowsecurity FROM pg_class"
        " WHERE relnamespace = 'drift'::regnamespace AND relkind IN ('r', 'p')"
    ).fetchall()
    assert len(tables) > 15
    assert [name for name, rls in tables if not rls] == []
    roles = db.execute(
        # (other tests add login users granted these roles; only the three are the migration's)
        "SELECT rolname, rolcanlogin FROM pg_roles"
        " WHERE rolname IN ('driftloop_ingest', 'driftloop_reader', 'driftloop_worker') ORDER BY rolname"
    ).fetchall()
    assert roles == [("driftloop_ingest", False), ("driftloop_reader", False), ("driftloop_worker", False)]
    # Definer functions never resolve names through the caller's search_path.
    unpinned = db.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'drift'::regnamespace AND p.prosecdef"
        " AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%')"
    ).fetchall()
    assert unpinned == []


def test_ingest_inserts_and_labels_its_own_rows_only(db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO drift.interaction_log (model, prompt) VALUES ('bot', 'the owner''s row')")
    others = owner_ids(db, "bot")
    log_as(db, "driftloop_ingest", "bot", n=3)
    mine = owner_ids(db, "bot") - others
    assert len(mine) == 3
    # The log triggers ran as their owner: the rollups and the model registry followed.
    assert db.execute("SELECT embedding_dims FROM drift.models WHERE model = 'bot'").fetchone() == (3,)
    pending = db.execute(
        "SELECT (SELECT coalesce(sum(interactions), 0) FROM drift.interaction_rollup_delta WHERE model = 'bot')"
        " + (SELECT coalesce(sum(interactions), 0) FROM drift.interaction_rollup WHERE model = 'bot')"
    ).fetchone()
    assert pending == (4,)

    assert ids_visible(db, "driftloop_ingest") == mine  # not the owner's row
    with acting_as(db, "driftloop_ingest") as cur:
        cur.execute("UPDATE drift.interaction_log SET feedback = 1, correct = true WHERE model = 'bot'")
        assert cur.rowcount == 3  # its own rows; the owner's stays untouched
    assert db.execute("SELECT count(*) FROM drift.interaction_log WHERE correct").fetchone() == (3,)

    refused(db, "driftloop_ingest", "UPDATE drift.interaction_log SET prompt = 'rewritten'")
    refused(db, "driftloop_ingest", "DELETE FROM drift.interaction_log")
    refused(db, "driftloop_ingest", "DELETE FROM drift.embeddings_log")
    refused(db, "driftloop_ingest", "SELECT * FROM drift.drift_events")
    refused(db, "driftloop_ingest", "SELECT * FROM drift.drift_status")
    refused(db, "driftloop_ingest", "SELECT * FROM drift.settings")
    refused(db, "driftloop_ingest", "UPDATE drift.settings SET value = '1' WHERE key = 'min_samples'")
    refused(db, "driftloop_ingest", "INSERT INTO drift.refusal_patterns (pattern) VALUES ('x')")
    # The forged event of the security review: ingest cannot create work for the worker.
    refused(
        db,
        "driftloop_ingest",
        "INSERT INTO drift.drift_events (model, kind, metric, window_start, window_end)"
        " VALUES ('bot', 'embedding', 'centroid_distance', '2001-01-01', '2001-01-02')",
    )
    refused(db, "driftloop_ingest", "SELECT drift.set_baseline('bot', now() - interval '1 day', now())")
    # Rows it logs carry its identity; claiming another's is a policy violation.
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
        acting_as(db, "driftloop_ingest") as cur,
    ):
        cur.execute("INSERT INTO drift.interaction_log (model, inserted_by) VALUES ('bot', 'postgres')")


def test_worker_moves_events_and_baselines_and_may_not_touch_logs_or_settings(db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    rows = [(now - timedelta(minutes=90) + timedelta(seconds=20 * i),) for i in range(200)]
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO drift.interaction_log (model, created_at, is_refusal) VALUES ('bot', %s, false)", rows
        )
    with acting_as(db, "driftloop_worker") as cur:
        cur.execute("SELECT count(*) FROM drift.interaction_log")
        assert cur.fetchone() == (200,)  # training data for retrain
        cur.execute(
            "SELECT * FROM drift.set_baseline('bot', %s, %s)",
            (now - timedelta(minutes=90), now - timedelta(minutes=30)),
        )
        assert len(cur.fetchall()) == 3
        cur.execute("SELECT * FROM drift.evaluate()")
        cur.execute(
            "INSERT INTO drift.drift_events (model, kind, metric, window_start, window_end)"
            " VALUES ('bot', 'behavior', 'refusal_rate', now() - interval '1 hour', now()) RETURNING id"
        )
        event = cur.fetchone()
        assert event is not None
        cur.execute("SELECT id FROM drift.claim_events('w1', 10, 30, NULL)")
        assert event[0] in {r[0] for r in cur.fetchall()}
        cur.execute("SELECT * FROM drift.drift_status")
    refused(db, "driftloop_worker", "UPDATE drift.interaction_log SET prompt = 'x'")
    refused(db, "driftloop_worker", "DELETE FROM drift.interaction_log")
    refused(db, "driftloop_worker", "UPDATE drift.settings SET value = '1' WHERE key = 'min_samples'")
    refused(db, "driftloop_worker", "DELETE FROM drift.settings")


def test_reader_sees_views_and_events_only(db: psycopg.Connection[Any]) -> None:
    log_as(db, "driftloop_ingest", "bot")
    db.execute(
        "INSERT INTO drift.drift_events (model, kind, metric, window_start, window_end)"
        " VALUES ('bot', 'behavior', 'refusal_rate', now() - interval '1 hour', now())"
    )
    with acting_as(db, "driftloop_reader") as cur:
        cur.execute("SELECT model, metric FROM drift.drift_status WHERE model = 'bot'")
        assert {r[1] for r in cur.fetchall()} >= {"centroid_distance", "refusal_rate", "accuracy"}
        cur.execute("SELECT count(*) FROM drift.drift_events")
        assert cur.fetchone() == (1,)
        for view in ("embedding_drift", "behavior_drift", "accuracy_drift"):
            cur.execute(f"SELECT count(*) FROM drift.{view}")
        cur.execute("SELECT digest FROM drift.code_layer")  # the schema check every command makes
        assert cur.fetchone() is not None
    refused(db, "driftloop_reader", "SELECT * FROM drift.interaction_log")
    refused(db, "driftloop_reader", "SELECT * FROM drift.baselines")
    refused(db, "driftloop_reader", "UPDATE drift.drift_events SET status = 'resolved'")
    refused(db, "driftloop_reader", "DELETE FROM drift.drift_events")
    refused(db, "driftloop_reader", "INSERT INTO drift.interaction_log (model) VALUES ('bot')")


def test_anon_inserts_and_reads_nothing(db: psycopg.Connection[Any]) -> None:
    log_as(db, "anon", "web")
    assert len(owner_ids(db, "web")) == 1
    refused(db, "anon", "SELECT * FROM drift.interaction_log")
    refused(db, "anon", "SELECT * FROM drift.embeddings_log")
    refused(db, "anon", "UPDATE drift.interaction_log SET feedback = 1")
    refused(db, "anon", "DELETE FROM drift.interaction_log")
    refused(db, "anon", "SELECT * FROM drift.drift_status")
    refused(db, "anon", "SELECT * FROM drift.drift_events")
    refused(db, "anon", "SELECT * FROM drift.models")
    refused(db, "anon", "INSERT INTO drift.baselines (model) VALUES ('web')")


def test_authenticated_users_see_and_label_only_their_own_rows(db: psycopg.Connection[Any]) -> None:
    log_as(db, "authenticated", "app", sub="alice", n=2)
    alice = owner_ids(db, "app")
    log_as(db, "authenticated", "app", sub="bob", n=3)
    bob = owner_ids(db, "app") - alice
    log_as(db, "anon", "app")
    assert ids_visible(db, "authenticated", "alice") == alice
    assert ids_visible(db, "authenticated", "bob") == bob
    with acting_as(db, "authenticated", "bob") as cur:
        cur.execute("UPDATE drift.interaction_log SET feedback = -1 WHERE id = ANY(%s)", (list(alice),))
        assert cur.rowcount == 0  # alice's rows are invisible to bob, so untouched
        cur.execute("UPDATE drift.interaction_log SET correct = false WHERE id = ANY(%s)", (list(bob),))
        assert cur.rowcount == 3
        cur.execute("SELECT count(*) FROM drift.embeddings_log")
        assert cur.fetchone() == (3,)
    assert db.execute("SELECT count(*) FROM drift.interaction_log WHERE feedback IS NOT NULL").fetchone() == (0,)
    refused(db, "authenticated", "UPDATE drift.interaction_log SET prompt = 'x'", sub="alice")
    refused(db, "authenticated", "DELETE FROM drift.interaction_log", sub="alice")
    refused(db, "authenticated", "SELECT * FROM drift.drift_events", sub="alice")
    refused(db, "authenticated", "UPDATE drift.baselines SET n = 0", sub="alice")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
        acting_as(db, "authenticated", "mallory") as cur,
    ):
        cur.execute("INSERT INTO drift.interaction_log (model, inserted_by) VALUES ('app', 'alice')")


def test_service_role_sees_everything(db: psycopg.Connection[Any]) -> None:
    log_as(db, "authenticated", "app", sub="alice")
    log_as(db, "driftloop_ingest", "app")
    with acting_as(db, "service_role") as cur:
        cur.execute("SELECT count(*) FROM drift.interaction_log")
        assert cur.fetchone() == (2,)
        cur.execute("UPDATE drift.interaction_log SET feedback = 1")
        assert cur.rowcount == 2
        cur.execute("SELECT count(*) FROM drift.drift_status")


def test_worker_and_metrics_run_as_login_users_granted_only_their_roles(
    db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The deployment the README shows: `driftloop worker` as a user granted driftloop_worker,
    `driftloop metrics` as one granted driftloop_reader."""
    for user, role in (("driftloop_worker_test", "driftloop_worker"), ("driftloop_dashboard_test", "driftloop_reader")):
        db.execute(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) THEN"
                " CREATE ROLE {user} LOGIN PASSWORD 'test' IN ROLE {role}; END IF; END $$"
            ).format(name=sql.Literal(user), user=sql.Identifier(user), role=sql.Identifier(role))
        )

    def as_user(user: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"{user}:test@{parts.netloc.rsplit('@', 1)[-1]}"))

    [event] = insert_events(db, ["support-bot"], kind="behavior")
    url = db_url_of(db)
    config = write_config(
        tmp_path, '[actions.note]\ntype = "command"\nargv = ["true"]\n\n[[routes]]\nactions = ["note"]\n'
    )
    env = {**os.environ, "DATABASE_URL": as_user("driftloop_worker_test"), "DRIFTLOOP_CONFIG": str(config)}
    done = subprocess.run([DRIFTLOOP, "worker", "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert db.execute("SELECT status FROM drift.drift_events WHERE id = %s", (event,)).fetchone() == ("resolved",)

    port = free_port()
    env = {**os.environ, "DATABASE_URL": as_user("driftloop_dashboard_test")}
    metrics = subprocess.Popen([DRIFTLOOP, "metrics", "--port", str(port)], env=env, start_new_session=True)
    try:

        def scrape() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                return ""

        text = wait_until(lambda: "driftloop_events" in scrape() and scrape(), 60, "/metrics as the reader")
        assert 'driftloop_events{status="resolved"} 1.0' in text
    finally:
        kill_group(metrics)
        metrics.wait(10)
