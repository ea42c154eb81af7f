"""Time partitions of the logs, retention by whole partitions, hourly compaction of old rollups.

interaction_log and embeddings_log are partitioned by created_at (a day, or a week with
partition_interval = '7 days'); rows no partition covers yet land in a default partition
and move into their own when drift.ensure_partitions() creates it. `driftloop db prune
--older-than 30d` drops whole partitions; the rollups, baselines and events stay, so the
drift statistics of the past stay exactly what they were.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

import driftloop
from driftloop import migrations
from tests.support.helpers import DRIFTLOOP

DAY = timedelta(days=1)
RELEASED_0004 = Path(__file__).parent / "data" / "schema_0004.sql"


def partitions(conn: psycopg.Connection[Any], log: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT partition, starts, ends FROM drift.log_partitions() WHERE log = %s AND NOT is_default ORDER BY starts",
        (log,),
    ).fetchall()


def where_rows_are(conn: psycopg.Connection[Any], log: str) -> dict[str, int]:
    rows = conn.execute(f"SELECT tableoid::regclass::text, count(*) FROM drift.{log} GROUP BY 1").fetchall()
    return {name.removeprefix("drift."): n for name, n in rows}


def rollup_totals(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    conn.execute("SELECT drift.compact_rollups()")
    row = conn.execute(
        """SELECT (SELECT sum(interactions) FROM drift.interaction_rollup),
                  (SELECT sum(quality_ok) FROM drift.interaction_rollup),
                  (SELECT sum(n) FROM drift.embedding_rollup),
                  (SELECT sum(vec_sum)::text FROM drift.embedding_rollup)"""
    ).fetchone()
    assert row is not None
    return tuple(row)


def log_days(db_url: str, model: str, days_ago: list[int], per_day: int = 48, dims: int = 4) -> None:
    """`per_day` interactions with embeddings spread evenly over each of those (UTC) days."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    times = [today - d * DAY + i * DAY / per_day for d in days_ago for i in range(per_day)]
    rng = np.random.default_rng(len(days_ago))
    rows = [
        {"model": model, "created_at": t, "response": "ok", "correct": i % 4 > 0, "embedding": v.tolist()}
        for i, (t, v) in enumerate(zip(times, rng.normal(size=(len(times), dims)), strict=True))
    ]
    with driftloop.connect(db_url) as dl:
        dl.log_interactions(rows)


def test_the_logs_are_partitioned_by_day_with_partitions_ahead(conn: psycopg.Connection[Any]) -> None:
    for log in ("interaction_log", "embeddings_log"):
        kind, key = conn.execute(
            """SELECT c.relkind, pg_get_partkeydef(c.oid) FROM pg_class c WHERE c.oid = %s::regclass""",
            (f"drift.{log}",),
        ).fetchone()
        assert (kind, key) == ("p", "RANGE (created_at)")
        pk = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
            (f"drift.{log}",),
        ).fetchone()
        assert pk == ("PRIMARY KEY (id, created_at)",)
        conn.execute("SELECT drift.ensure_partitions()")
        ranges = partitions(conn, log)
        assert all(ends - starts == DAY for _, starts, ends in ranges)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        assert {today + i * DAY for i in range(4)} <= {starts for _, starts, _ in ranges}
    # Cheap when nothing is missing: evaluate() calls it every time.
    assert conn.execute("SELECT drift.ensure_partitions()").fetchone() == (0,)


def test_ingest_labels_and_backfill_across_partitions(conn: psycopg.Connection[Any], db_url: str) -> None:
    log_days(db_url, "bot", [0, 1, 40])  # 40 days ago: no partition exists, the default one takes them
    before = rollup_totals(conn)
    assert before[0] == 3 * 48
    assert where_rows_are(conn, "interaction_log").get("interaction_log_default", 0) >= 48  # 40 days ago

    # Late labels by id alone reach the row in whichever partition it is, and the rollups follow.
    ids = [r[0] for r in conn.execute("SELECT id FROM drift.interaction_log WHERE NOT correct").fetchall()]
    conn.execute("UPDATE drift.interaction_log SET correct = true WHERE id = ANY(%s)", (ids,))
    after_labels = rollup_totals(conn)
    assert after_labels[1] == before[1] + len(ids)

    # Maintenance moves the back-filled rows into partitions of their own, counting nothing twice.
    created = conn.execute("SELECT drift.ensure_partitions(NULL, true)").fetchone()[0]
    assert created >= 2  # one per log at least
    for log in ("interaction_log", "embeddings_log"):
        placed = where_rows_are(conn, log)
        assert "interaction_log_default" not in placed and "embeddings_log_default" not in placed, placed
        assert sum(placed.values()) == 3 * 48
    assert rollup_totals(conn) == after_labels

    # A wrong dimension is still refused by the statement trigger on the partitioned parent.
    with pytest.raises(psycopg.errors.DataException, match="has 3 dimensions but model 'bot' uses 4"):
        conn.execute("INSERT INTO drift.embeddings_log (model, embedding) VALUES ('bot', '[1,2,3]')")


def test_prune_drops_whole_partitions_and_keeps_rollups_and_baselines(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    log_days(db_url, "bot", [45, 44, 35, 2, 1, 0])
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    conn.execute("SELECT count(*) FROM drift.set_baseline('bot', %s, %s)", (today - 45 * DAY, today - 43 * DAY))
    baselines = conn.execute("SELECT * FROM drift.baselines ORDER BY kind").fetchall()
    totals = rollup_totals(conn)

    done = subprocess.run(
        [DRIFTLOOP, "db", "prune", "--older-than", "30d"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "dropped interaction_log_p" in done.stdout and "dropped embeddings_log_p" in done.stdout

    days_left = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT date_trunc('day', created_at, 'UTC') FROM drift.interaction_log"
        ).fetchall()
    }
    assert days_left == {today - d * DAY for d in (2, 1, 0)}
    assert conn.execute("SELECT count(*) FROM drift.embeddings_log").fetchone() == (3 * 48,)
    assert all(starts >= today - 30 * DAY for _, starts, _ in partitions(conn, "interaction_log"))
    # Counts over the pruned days are still there (hourly now: older than rollup_hourly_after).
    assert rollup_totals(conn)[:3] == totals[:3]
    assert conn.execute("SELECT * FROM drift.baselines ORDER BY kind").fetchall() == baselines
    assert conn.execute(
        "SELECT n FROM drift.embedding_window('bot', %s, %s)", (today - 45 * DAY, today - 43 * DAY)
    ).fetchone() == (96,)

    bad = subprocess.run([DRIFTLOOP, "db", "prune", "--older-than", "soon"], capture_output=True, text=True)
    assert bad.returncode == 2 and "not an age like 30d" in bad.stderr


def test_old_rollup_buckets_compact_to_hourly_with_exact_sums(conn: psycopg.Connection[Any], db_url: str) -> None:
    log_days(db_url, "bot", [10, 9, 0], per_day=96)
    totals = rollup_totals(conn)
    minute_rows = conn.execute("SELECT count(*) FROM drift.interaction_rollup").fetchone()[0]
    assert minute_rows == 3 * 96  # one bucket per quarter of an hour

    written = conn.execute("SELECT drift.compact_rollups_hourly()").fetchone()[0]  # rollup_hourly_after: 7 days
    assert written == 2 * (2 * 24)  # the hours of days 10 and 9, in the embedding and interaction rollups
    buckets = conn.execute(
        "SELECT bucket FROM drift.interaction_rollup WHERE bucket < now() - interval '7 days'"
    ).fetchall()
    assert len(buckets) == 2 * 24 and all(b[0].minute == 0 for b in buckets)
    assert (
        conn.execute(
            "SELECT count(*) FROM drift.interaction_rollup WHERE bucket > now() - interval '1 day'"
        ).fetchone()[0]
        > 0
    )
    assert rollup_totals(conn)[:3] == totals[:3]
    assert conn.execute("SELECT drift.compact_rollups_hourly()").fetchone() == (0,)  # nothing left to fold


def test_a_new_step_fills_around_daily_partitions_that_start_where_others_end(conn: psycopg.Connection[Any]) -> None:
    """After partition_interval becomes 7 days, a weekly step may begin inside a run of daily
    partitions, each starting where the one before ends: only the rest of the week is created
    (whatever weekday the test runs on, the step is placed two weeks ahead)."""
    now = datetime.now(UTC)
    monday = (now + 14 * DAY - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    for log in ("interaction_log", "embeddings_log"):
        for day in range(2):
            conn.execute("SELECT drift.create_log_partition(%s, %s, %s)",
                         (log, monday + day * DAY, monday + (day + 1) * DAY))
    conn.execute("UPDATE drift.settings SET value = '7 days' WHERE key = 'partition_interval'")
    conn.execute("SELECT drift.ensure_partitions(%s)", (monday + 8 * DAY,))
    for log in ("interaction_log", "embeddings_log"):
        week = [(starts, ends) for _, starts, ends in partitions(conn, log) if monday <= starts < monday + 7 * DAY]
        assert week == [(monday, monday + DAY), (monday + DAY, monday + 2 * DAY), (monday + 2 * DAY, monday + 7 * DAY)]


def test_weekly_partitions_and_bounded_settings(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE drift.settings SET value = '7 days' WHERE key = 'partition_interval'")
    last_daily = partitions(conn, "interaction_log")[-1][2]
    conn.execute("SELECT drift.ensure_partitions(now() + interval '30 days')")
    weekly = [p for p in partitions(conn, "interaction_log") if p[1] >= last_daily]
    assert weekly and all(ends - starts <= 7 * DAY for _, starts, ends in weekly)
    assert any(ends - starts == 7 * DAY for _, starts, ends in weekly)
    assert max(ends for _, _, ends in weekly) >= datetime.now(UTC) + 30 * DAY
    for key, value in (("partition_interval", "2 hours"), ("partition_interval", "1 month"), ("partitions_ahead", "0")):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"drift setting {key}"):
            conn.execute("UPDATE drift.settings SET value = %s WHERE key = %s", (value, key))


def test_a_release_database_converts_keeping_ids_and_the_sequence(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(RELEASED_0004.read_text())
        conn.execute(
            "INSERT INTO drift.interaction_log (model, created_at, response)"
            " SELECT 'm', now() - i * interval '1 hour', 'ok' FROM generate_series(1, 100) i"
        )
        conn.execute("DELETE FROM drift.interaction_log WHERE id > 90")  # the sequence is ahead of max(id)
    migrations.upgrade(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), max(id) FROM drift.interaction_log").fetchone() == (90, 90)
        new = conn.execute("INSERT INTO drift.interaction_log (model) VALUES ('m') RETURNING id").fetchone()
        assert new == (101,)
        assert where_rows_are(conn, "interaction_log").get("interaction_log_default") is None


def test_dashboards_and_metrics_read_on_a_read_only_replica(conn: psycopg.Connection[Any], db_url: str) -> None:
    """A hot standby runs every transaction read-only: the views /metrics and Grafana read must not write."""
    from driftloop.worker.queries import query

    log_days(db_url, "bot", [1, 0])
    with psycopg.connect(db_url) as replica:
        replica.execute("SET TRANSACTION READ ONLY")
        status = replica.execute("SELECT model, kind, metric FROM drift.drift_status").fetchall()
        assert {r[0] for r in status} == {"bot"} and len(status) >= 4
        assert replica.execute(query("scrape")).fetchall()
        assert replica.execute("SELECT count(*) FROM drift.log_partitions()").fetchone()[0] >= 2
        # and a write is what such a transaction refuses
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            replica.execute("SELECT drift.ensure_partitions(now() + interval '60 days')")


def test_the_worker_role_keeps_partitions_ahead_but_cannot_write_a_partition(conn: psycopg.Connection[Any]) -> None:
    """evaluate() runs as whoever evaluates: partitions are created as the owner, reached via the parent only."""
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ROLE driftloop_worker")
        assert conn.execute("SELECT drift.ensure_partitions(now() + interval '10 days')").fetchone()[0] >= 2
        assert conn.execute("SELECT count(*) FROM drift.evaluate()").fetchone() == (0,)
        newest = partitions(conn, "embeddings_log")[-1][0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"INSERT INTO drift.{newest} (model, embedding) VALUES ('x', '[1]')")
    rls = conn.execute(
        "SELECT bool_and(relrowsecurity) FROM pg_class"
        " WHERE relispartition AND relkind = 'r' AND relnamespace = 'drift'::regnamespace"
    ).fetchone()
    assert rls == (True,)


def test_evaluation_reads_only_the_log_partition_of_its_window(conn: psycopg.Connection[Any], db_url: str) -> None:
    """With days of partitions, an evaluation reads the raw rows of its own window only.

    The rollups carry every statistic but the novelty rate, which searches the window's new
    embeddings against the baseline sample: those rows come from the partition of the window,
    pruned by time, never from every partition the logs have (the cost would grow with retention).
    """
    conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
    log_days(db_url, "bot", [5, 4, 3, 2, 1])
    conn.execute("SELECT drift.ensure_partitions(NULL, true)")  # the back-filled days get partitions of their own
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    conn.execute("SELECT count(*) FROM drift.set_baseline('bot', %s, %s)", (today - 5 * DAY, today - 4 * DAY))
    as_of = today - DAY + timedelta(hours=12)
    window_day = conn.execute(
        "SELECT partition FROM drift.log_partitions() WHERE log = 'embeddings_log' AND starts <= %s AND ends > %s",
        (as_of - timedelta(hours=1), as_of),
    ).fetchone()
    assert window_day is not None
    assert len(partitions(conn, "embeddings_log")) >= 5

    # A session of its own: its transaction's scan counters, per partition, count this evaluation only.
    with psycopg.connect(db_url) as session:
        session.execute("SELECT count(*) FROM drift.evaluate(%s)", (as_of,))
        read = session.execute(
            """SELECT relname FROM pg_stat_xact_user_tables
               WHERE schemaname = 'drift' AND (relname LIKE 'embeddings_log%%' OR relname LIKE 'interaction_log%%')
                 AND seq_scan + coalesce(idx_scan, 0) > 0"""
        ).fetchall()
        scored = session.execute(
            "SELECT sum(scored) FROM drift.novelty_rollup WHERE model = 'bot' AND bucket >= %s AND bucket < %s",
            (as_of - timedelta(hours=1), as_of),
        ).fetchone()
        session.rollback()
    assert scored is not None and scored[0] > 0  # the window's embeddings were searched...
    assert read == [window_day]  # ...read from their own partition alone; interactions from the rollups


def test_prune_deletes_the_evaluation_history_of_that_age_but_each_metrics_latest(
    conn: psycopg.Connection[Any], db_url: str
) -> None:
    """Every drift.evaluate() leaves a row per model, metric and bucket: it goes with the logs."""
    log_days(db_url, "bot", [45, 44, 40, 2, 1, 0])
    # Evaluated last 40 days ago (not by its ingest triggers either, which evaluate at now()).
    conn.execute("INSERT INTO drift.models (model, auto_evaluate) VALUES ('idle-bot', false)")
    log_days(db_url, "idle-bot", [45, 44, 40])
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for model in ("bot", "idle-bot"):
        conn.execute("SELECT count(*) FROM drift.set_baseline(%s, %s, %s)", (model, today - 45 * DAY, today - 44 * DAY))
    for days_ago in (44, 40):
        conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (today - days_ago * DAY + timedelta(hours=12),))
    conn.execute("SELECT count(*) FROM drift.evaluate_models(now(), ARRAY['bot'])")  # the idle one: not today
    metrics = {m: n for m, n in conn.execute("""SELECT model, count(DISTINCT (kind, metric))
                                                 FROM drift.evaluation_history GROUP BY 1""").fetchall()}
    assert metrics["bot"] > 0 and metrics["idle-bot"] > 0
    old = "SELECT count(*) FROM drift.evaluation_history WHERE model = %s AND as_of < now() - interval '30 days'"
    assert conn.execute(old, ("bot",)).fetchone()[0] > 0

    done = subprocess.run(
        [DRIFTLOOP, "db", "prune", "--older-than", "30d"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "evaluation_history row(s) evaluated before" in done.stdout

    assert conn.execute(old, ("bot",)).fetchone() == (0,)  # its latest evaluations are today's
    # The idle model keeps exactly its last evaluation of each metric: it is still known as evaluated.
    assert conn.execute(
        "SELECT count(*), count(DISTINCT (kind, metric)), max(as_of) FROM drift.evaluation_history"
        " WHERE model = 'idle-bot'"
    ).fetchone() == (metrics["idle-bot"], metrics["idle-bot"], today - 40 * DAY + timedelta(hours=12))
    assert conn.execute(
        "SELECT last_evaluated_at IS NOT NULL FROM drift.evaluation_freshness WHERE model = 'idle-bot'"
    ).fetchone() == (True,)
