"""Cost of a /metrics scrape against a bare `SELECT 1` round trip, as the logs grow.

50 models with steady traffic (the same embeddings per hour throughout). Phase "small":
10% of `--rows`, over the last two days (the first of them is every model's baseline).
Phase "large": the other 90% added as older history, over the days before, at the same
rate, so the recent windows the drift views read are unchanged and only the amount
logged grows. After each phase: the best of 30 timings of an HTTP GET /metrics on a real
`driftloop metrics` process, of the scrape query alone, and of `SELECT 1`, same run.
The scrape must not grow with the rows logged: `growth_large_over_small` should stay
near 1.

The scrape also counts every action run (`driftloop_actions_total` and the duration and
reaction histograms, from drift.action_runs): `--runs` finished runs over a quarter as
many resolved events are written first. `before_query_ms` times, in the same run, the
scrape query as it was before those metrics moved into the database (drift views and
event counts only); `scrape_over_before` is what the database-backed metrics cost.

Phase "many_runs": `--more-runs` further runs (over a quarter as many events), then the
same timings. The action metrics are counters kept as runs are written
(drift.action_run_counts), so `runs_growth` (many_runs over large, scrape query) should
stay near 1; `recount_query_ms` times, same run, what the action part of the scrape cost
when it counted every run (the views before the counters).

    python -m bench.scrape [--rows 1000000] [--dims 16] [--runs 20000] [--more-runs 1000000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import psycopg

import driftloop
from bench.common import emit, fresh_database
from driftloop.worker.queries import query
from tests.support.helpers import free_port

DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))
MODELS = 50
SPAN = timedelta(days=2)
REPEATS = 30
# The scrape query before the action metrics were read from the database: the baseline.
BEFORE_QUERY = """
SELECT 'drift' AS family, model, kind, metric, score, threshold, p_value,
    CASE WHEN drifted THEN 1.0 ELSE 0.0 END AS drifted, NULL::text AS status, NULL::float8 AS n
FROM drift.drift_status
UNION ALL
SELECT 'events', NULL, NULL, NULL, NULL, NULL, NULL, NULL, status, count(*)::float8
FROM drift.drift_events
GROUP BY status
"""

# The action part of the scrape when it counted every run (the views before the counters).
RECOUNT_QUERY = """
SELECT action, outcome, count(*)::float8 FROM drift.action_runs WHERE outcome <> 'running' GROUP BY 1, 2
UNION ALL
SELECT action, NULL, count(*)::float8 FROM (
    SELECT action, width_bucket(date_part('epoch', finished_at - started_at), drift.action_duration_bounds()) AS b
    FROM drift.action_runs WHERE outcome IN ('succeeded', 'failed', 'lease_lost') AND finished_at IS NOT NULL) d
GROUP BY action, b
UNION ALL
SELECT NULL, NULL, count(*)::float8 FROM (
    SELECT width_bucket(greatest(date_part('epoch', f.started_at - e.created_at), 0),
                        drift.event_reaction_bounds()) AS b
    FROM (SELECT event_id, min(started_at) AS started_at FROM drift.action_runs GROUP BY event_id) f
    JOIN drift.drift_events e ON e.id = f.event_id) r
GROUP BY b
"""


def log(url: str, rows: int, dims: int, seed: int, ends: datetime, span: timedelta, baselines: bool = False) -> float:
    """Log `rows` embeddings evenly over the models and [ends - span, ends); returns seconds taken."""
    rng = np.random.default_rng(seed)
    per_model = rows // MODELS
    start = time.perf_counter()
    with driftloop.connect(url) as dl:
        for m in range(MODELS):
            offsets = np.linspace(0, span.total_seconds(), per_model, endpoint=False) + rng.uniform(0, 1, per_model)
            times = [ends - span + timedelta(seconds=float(s)) for s in offsets]
            dl.log_embeddings(f"model-{m:02d}", rng.normal(size=(per_model, dims)).astype(np.float32), created_at=times)
        if baselines:  # the first day is every model's reference window
            for m in range(MODELS):
                dl.set_baseline(f"model-{m:02d}", ends - span, ends - span / 2)
        dl.evaluate()  # what the engine does every evaluate_interval anyway (compaction, caches)
    return time.perf_counter() - start


def log_action_runs(url: str, runs: int) -> None:
    """`runs` finished action runs (4 per event, one failed) over resolved events of the last day."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            WITH e AS (
                INSERT INTO drift.drift_events (created_at, model, kind, metric, score, threshold, status, attempts)
                SELECT now() - (g * interval '17 seconds'), 'model-' || lpad((g %% 50)::text, 2, '0'),
                    'embedding', 'centroid_distance', 0.3, 0.15, 'resolved', 1
                FROM generate_series(1, %(events)s) AS g
                RETURNING id, created_at
            )
            INSERT INTO drift.action_runs (event_id, action, action_type, attempt, worker, outcome,
                started_at, finished_at)
            SELECT e.id, (ARRAY['reindex', 'retrain', 'notify_ci', 'log_it'])[k], 'command', 1, 'bench',
                CASE WHEN k = 4 THEN 'failed' ELSE 'succeeded' END,
                e.created_at + k * interval '0.7 seconds', e.created_at + k * interval '1.9 seconds'
            FROM e CROSS JOIN generate_series(1, 4) AS k
            """,
            {"events": max(runs // 4, 1)},
        )


def best_ms(fn) -> float:  # type: ignore[no-untyped-def]
    """Fastest of REPEATS runs: the figure least disturbed by other work on a shared machine."""
    fn()  # warm
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times) * 1000, 3)


def wait_for(metrics_url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(metrics_url).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def measure(url: str, metrics_url: str) -> dict[str, float]:
    wait_for(metrics_url)
    with psycopg.connect(url, autocommit=True) as conn, httpx.Client() as http:
        logged = conn.execute("SELECT count(*) FROM drift.embeddings_log").fetchone()[0]
        select1 = best_ms(lambda: conn.execute("SELECT 1").fetchone())
        scrape_query = best_ms(lambda: conn.execute(query("scrape")).fetchall())
        before_query = best_ms(lambda: conn.execute(BEFORE_QUERY).fetchall())
        recount_query = best_ms(lambda: conn.execute(RECOUNT_QUERY).fetchall())
        runs = conn.execute("SELECT count(*) FROM drift.action_runs").fetchone()[0]
        scrape_http = best_ms(lambda: http.get(metrics_url).raise_for_status())
        text = http.get(metrics_url).text
        if "driftloop_database_up 1.0" not in text:
            raise SystemExit("the scrape could not read the drift views; see the `driftloop metrics` log")
        series = sum(1 for line in text.splitlines() if line.startswith("driftloop_drift_score"))
    return {
        "rows_logged": logged,
        "select1_ms": select1,
        "scrape_query_ms": scrape_query,
        "before_query_ms": before_query,
        "scrape_over_before": round(scrape_query / before_query, 2),
        "action_runs": runs,
        "recount_query_ms": recount_query,
        "scrape_http_ms": scrape_http,
        "score_series": series,
        "scrape_http_over_select1": round(scrape_http / select1, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=16)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--more-runs", type=int, default=1_000_000)
    args = parser.parse_args()
    with fresh_database() as url:
        port = free_port()
        server = subprocess.Popen(
            [DRIFTLOOP, "metrics", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            small_rows = args.rows // 10
            now = datetime.now(UTC)
            load_small = log(url, small_rows, args.dims, 1, now, SPAN, baselines=True)
            log_action_runs(url, args.runs)
            small = measure(url, metrics_url)
            load_large = log(url, args.rows - small_rows, args.dims, 2, now - SPAN, SPAN * 9)
            large = measure(url, metrics_url)
            log_action_runs(url, args.more_runs)
            many_runs = measure(url, metrics_url)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    growth = large["scrape_http_ms"] / small["scrape_http_ms"]
    emit(
        {
            "benchmark": "scrape",
            "what": f"GET /metrics of `driftloop metrics` with {MODELS} models, embeddings of {args.dims} dims, "
            f"{args.runs} action runs",
            "small": {**small, "load_s": round(load_small, 1)},
            "large": {**large, "load_s": round(load_large, 1)},
            "growth_large_over_small": round(growth, 2),
            "many_runs": many_runs,
            "runs_growth": round(many_runs["scrape_query_ms"] / large["scrape_query_ms"], 2),
            "recount_growth": round(many_runs["recount_query_ms"] / large["recount_query_ms"], 2),
            "target": "growth and runs_growth near 1 (scrape cost independent of rows logged and runs recorded)",
        }
    )


if __name__ == "__main__":
    main()
