"""The action and event metrics of /metrics are counted as they change, not recounted at each scrape.

`driftloop_actions_total` and the duration and reaction histograms come from
drift.action_outcomes, drift.action_duration_histogram and drift.event_reaction_histogram.
They read drift.action_run_counts, which triggers on drift.action_runs keep, so a scrape
reads a few dozen rows however many runs there are (bench.scrape measures it); the values
are those of a recount over every run. `driftloop_events{status}` likewise reads
drift.event_status_totals: deltas appended as events change status, folded by
drift.compact_rollups.
"""

from __future__ import annotations

from typing import Any

import psycopg

from driftloop.worker.queries import query
from driftloop.worker.store import Store
from tests.support.helpers import insert_events

# What the views computed from every run before the counters (the reference).
RECOUNT_OUTCOMES = """SELECT action, outcome, count(*) FROM drift.action_runs WHERE outcome <> 'running'
                      GROUP BY 1, 2 ORDER BY 1, 2"""
RECOUNT_DURATIONS = """
SELECT action, le, count(*) FILTER (WHERE d <= le), coalesce(sum(d) FILTER (WHERE d <= le), 0)
FROM (SELECT action, date_part('epoch', finished_at - started_at) AS d FROM drift.action_runs
      WHERE outcome IN ('succeeded', 'failed', 'lease_lost') AND finished_at IS NOT NULL) r
CROSS JOIN unnest(drift.action_duration_bounds() || 'Infinity'::float8) AS le
GROUP BY 1, 2 ORDER BY 1, 2"""
RECOUNT_REACTIONS = """
SELECT le, count(*) FILTER (WHERE d <= le), coalesce(sum(d) FILTER (WHERE d <= le), 0)
FROM (SELECT greatest(date_part('epoch', f.started_at - e.created_at), 0) AS d
      FROM (SELECT event_id, min(started_at) AS started_at FROM drift.action_runs GROUP BY 1) f
      JOIN drift.drift_events e ON e.id = f.event_id) r
CROSS JOIN unnest(drift.event_reaction_bounds() || 'Infinity'::float8) AS le
GROUP BY 1 ORDER BY 1"""


def rounded(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]


def relations_in_plan(conn: psycopg.Connection[Any], statement: str) -> set[str]:
    [(plan,)] = conn.execute("EXPLAIN (FORMAT JSON) " + statement).fetchall()
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_the_counters_equal_a_recount_of_every_run(conn: psycopg.Connection[Any], db_url: str) -> None:
    ids = insert_events(conn, [f"m{i}" for i in range(6)])
    store = Store(db_url, "worker-a", lease_s=30, pool_size=2)
    try:
        events = store.claim(10)
        for n, event in enumerate(events):
            run = store.start_run(event, "log_it", "command")  # a running run counts its reaction only
            if n == 5:
                continue
            store.finish_run(event.id, run, "failed" if n % 3 == 0 else "succeeded", None, None)
            second = store.start_run(event, "notify", "webhook")  # not the event's first run
            store.finish_run(event.id, second, "succeeded", None, None)
        store.take_over_runs(ids[0], [])  # another worker's leftovers: none, nothing changes
    finally:
        store.close()
    # Runs written already finished (imports, benchmarks), and an update of another column.
    [imported] = insert_events(conn, ["m-imported"])
    conn.execute(
        """INSERT INTO drift.action_runs
               (event_id, action, action_type, attempt, worker, outcome, started_at, finished_at)
           SELECT %s, 'retrain', 'retrain', 1, 'x', o, now() - interval '70 seconds', now() - interval '10 seconds'
           FROM unnest('{succeeded,failed,lease_lost,abandoned}'::text[]) o""",
        (imported,),
    )
    conn.execute("UPDATE drift.action_runs SET recovery = '{}' WHERE action = 'retrain'")
    conn.execute("UPDATE drift.action_runs SET outcome = 'abandoned', finished_at = now() WHERE outcome = 'running'")

    assert conn.execute("SELECT action, outcome, runs FROM drift.action_outcomes ORDER BY 1, 2").fetchall() == (
        conn.execute(RECOUNT_OUTCOMES).fetchall()
    )
    durations = "SELECT action, le, runs, seconds_sum FROM drift.action_duration_histogram ORDER BY 1, 2"
    assert rounded(conn.execute(durations).fetchall()) == rounded(conn.execute(RECOUNT_DURATIONS).fetchall())
    reactions = "SELECT le, events, seconds_sum FROM drift.event_reaction_histogram ORDER BY 1"
    assert rounded(conn.execute(reactions).fetchall()) == rounded(conn.execute(RECOUNT_REACTIONS).fetchall())
    assert conn.execute("SELECT events FROM drift.event_reaction_histogram WHERE le = 'Infinity'").fetchone() == (7,)


def test_events_per_status_follow_every_transition(conn: psycopg.Connection[Any], db_url: str) -> None:
    def totals() -> dict[str, int]:
        return dict(conn.execute("SELECT status, events FROM drift.event_status_totals").fetchall())

    def recount() -> dict[str, int]:
        counted = dict(conn.execute("SELECT status, count(*) FROM drift.drift_events GROUP BY 1").fetchall())
        return {s: counted.get(s, 0) for s in ("pending", "running", "resolved", "failed")}

    ids = insert_events(conn, [f"m{i}" for i in range(5)])
    store = Store(db_url, "worker-a", lease_s=30, pool_size=2)
    try:
        events = store.claim(3)
        store.extend_leases([e.id for e in events])  # no status change: nothing appended
        store.resolve(events[0].id, {"worker": "worker-a"})
        store.fail_attempt(events[1].id, "boom", delay_s=0, permanent=True, resolution={})
        assert totals() == recount() == {"pending": 2, "running": 1, "resolved": 1, "failed": 1}
    finally:
        store.close()
    conn.execute("SELECT drift.retry_event(%s)", (events[1].id,))
    conn.execute("DELETE FROM drift.drift_events WHERE id = %s", (ids[4],))  # a pending one
    assert totals() == recount()
    conn.execute("SELECT drift.compact_rollups()")  # folds the deltas: one row per status
    assert conn.execute("SELECT count(*) = count(DISTINCT status) FROM drift.event_status_counts").fetchone() == (True,)
    assert totals() == recount() == {"pending": 2, "running": 1, "resolved": 1, "failed": 0}


def test_a_scrape_reads_no_action_run(conn: psycopg.Connection[Any]) -> None:
    touched = relations_in_plan(conn, query("scrape"))
    assert "action_run_counts" in touched
    assert "action_runs" not in touched
