"""Growth: ingestion, evaluation and late labels with 90 days of partitions vs 1 day; storage; models/minute.

Cases, all in one run so the ratios compare like with like on a shared machine:
- `1_day` and `90_days`: the same models, one with a single day of history, one with 90
  daily partitions full of rows. Measured in each: ingest rows/s (SDK batches of
  interactions with 384-d embeddings, today's partition), `drift.evaluate()` seconds, and a
  late label: the SDK's `feedback()` (the id's partition step first, then an update pruned to
  that partition), and, for comparison, `UPDATE ... WHERE id = ...` by id alone, which plans
  and probes every partition's primary key. Ratios are 1_day / 90_days speed (1.0 = no
  slowdown).
- storage: bytes per logged interaction and per embedding row (384-d and 1536-d), and rollup
  bytes per model and day at minute buckets and after hourly compaction.
- `models_per_minute`: drift.evaluate() over 1,000 models, each with a baseline and a
  current window.

    python -m bench.partitions [--days 90] [--models 1000] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

import driftloop
from bench.common import emit, fresh_database, median_time
from driftloop.database import connect

DIMS = 384
MODELS = ["support-bot", "search-bot"]
DAY = timedelta(days=1)
TEXT = "How do I rotate the API key of my project without downtime? " * 2  # a typical short prompt
ANSWER = "Create a second key, deploy it everywhere, then revoke the first one. " * 4


def one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    """The single value a query returns."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def midnight() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def history(conn: psycopg.Connection[Any], days: int, rows_per_day: int, dims: int = DIMS) -> None:
    """`rows_per_day` interactions and embeddings per model on each past day, written in SQL (fast)."""
    conn.execute("UPDATE drift.models SET auto_evaluate = false")
    for model in MODELS:
        conn.execute(
            """INSERT INTO drift.models (model, auto_evaluate) VALUES (%s, false)
               ON CONFLICT (model) DO UPDATE SET auto_evaluate = false""",
            (model,),
        )
        for day in range(days, 0, -1):
            start = midnight() - day * DAY
            conn.execute(
                """INSERT INTO drift.interaction_log
                       (model, created_at, prompt, response, toxicity, correct, latency_ms)
                   SELECT %(m)s, %(s)s + i * (interval '1 day' / %(n)s), %(p)s, %(a)s,
                          (i %% 10) / 100.0, i %% 5 > 0, 300
                   FROM generate_series(0, %(n)s - 1) i""",
                {"m": model, "s": start, "n": rows_per_day, "p": TEXT, "a": ANSWER},
            )
            conn.execute(
                """INSERT INTO drift.embeddings_log (model, created_at, embedding)
                   SELECT %(m)s, %(s)s + i * (interval '1 day' / %(n)s),
                          (SELECT array_agg(sin(i * 7 + d))::real[]::vector FROM generate_series(1, %(d)s) d)
                   FROM generate_series(0, %(n)s - 1) i""",
                {"m": model, "s": start, "n": rows_per_day, "d": dims},
            )
        conn.execute(
            "SELECT count(*) FROM drift.set_baseline(%s, %s, %s)",
            (model, midnight() - days * DAY, midnight() - (days - 1) * DAY),
        )
    conn.execute("SELECT drift.ensure_partitions(NULL, true)")
    conn.execute("SELECT drift.compact_rollups()")
    conn.execute("ANALYZE")


def batch(rng: np.random.Generator, n: int, at: datetime) -> list[dict[str, Any]]:
    x = rng.normal(size=(n, DIMS)).astype(np.float32)
    return [
        {"model": MODELS[i % 2], "created_at": at, "prompt": TEXT, "response": ANSWER, "toxicity": 0.01,
         "correct": True, "latency_ms": 250.0, "embedding": x[i].tolist()}
        for i in range(n)
    ]  # fmt: skip


def case(url: str, days: int, rows_per_day: int, repeats: int) -> dict[str, float]:
    with connect(url, autocommit=True) as conn:
        history(conn, days, rows_per_day)
        partitions = one(conn, "SELECT count(*) FROM drift.log_partitions() WHERE NOT is_default")
        rng = np.random.default_rng(days)
        rows = batch(rng, 500, datetime.now(UTC))
        with driftloop.connect(url) as client:
            ingest_s = median_time(repeats, lambda: client.log_interactions(rows))
        vectors = rng.normal(size=(100, DIMS)).astype(np.float32)

        def row_by_row() -> None:
            # An app logging one embedding per statement, 100 in a transaction (the staged path).
            with conn.transaction():
                for v in vectors:
                    conn.execute("INSERT INTO drift.embeddings_log (model, embedding) VALUES (%s, %s)", (MODELS[0], v))

        small_s = median_time(repeats, row_by_row)
        ensure_s = median_time(repeats * 4, lambda: conn.execute("SELECT drift.ensure_partitions()").fetchone())
        ids = [r[0] for r in conn.execute("SELECT id FROM drift.interaction_log ORDER BY random() LIMIT 200")]
        k = iter(range(10**9))

        def label_by_id_alone() -> None:
            conn.execute("UPDATE drift.interaction_log SET feedback = 1 WHERE id = %s", (ids[next(k) % len(ids)],))

        with driftloop.connect(url) as client:
            # The two label paths take turns, so both meet the same background work (the
            # autovacuum of the history just written, other jobs on the machine).
            turns: dict[str, list[float]] = {"sdk": [], "by_id": []}
            for _ in range(repeats * 20 + 1):
                for name, fn in (("sdk", lambda: client.feedback(ids[next(k) % len(ids)], feedback=1)),
                                 ("by_id", label_by_id_alone)):  # fmt: skip
                    began = time.perf_counter()
                    fn()
                    turns[name].append(time.perf_counter() - began)
        label_s, by_id_s = (statistics.median(turns[n][1:]) for n in ("sdk", "by_id"))
        evaluate_s = median_time(repeats, lambda: conn.execute("SELECT count(*) FROM drift.evaluate()").fetchone())
    return {
        "partitions": partitions,
        "ingest_rows_per_s": round(500 / ingest_s),
        "row_by_row_embeddings_per_s": round(100 / small_s),
        "ensure_partitions_ms": round(ensure_s * 1000, 3),
        "evaluate_s": round(evaluate_s, 4),
        "label_update_ms": round(label_s * 1000, 3),
        "label_by_id_alone_ms": round(by_id_s * 1000, 3),
    }


def storage(url: str, dims: int, rows: int) -> dict[str, float]:
    """Bytes per logged row (heap + TOAST + indexes) and rollup bytes per model-day."""
    with connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO drift.models (model, auto_evaluate) VALUES ('store', false) ON CONFLICT DO NOTHING")
        start = midnight() - 2 * DAY
        # One full day at one row per minute: every minute bucket of the rollups is used.
        conn.execute(
            """INSERT INTO drift.interaction_log (model, created_at, prompt, response, toxicity, correct, latency_ms)
               SELECT 'store', %(s)s + i * (interval '1 day' / %(n)s), %(p)s, %(a)s, 0.01, true, 250
               FROM generate_series(0, %(n)s - 1) i""",
            {"s": start, "n": rows, "p": TEXT, "a": ANSWER},
        )
        rng = np.random.default_rng(dims)
        with driftloop.connect(url) as client:
            for lo in range(0, rows, 2000):
                n = min(2000, rows - lo)
                stamps = [start + (lo + i) * DAY / rows for i in range(n)]
                client.log_embeddings("store", rng.normal(size=(n, dims)).astype(np.float32), created_at=stamps)
        conn.execute("SELECT drift.compact_rollups()")
        conn.execute("VACUUM ANALYZE")

        def size(sql: str) -> int:
            return int(one(conn, sql))

        logs = """SELECT sum(pg_total_relation_size(format('drift.%%I', partition)::regclass))
                  FROM drift.log_partitions() WHERE log = %s"""
        interaction_bytes = int(one(conn, logs, ("interaction_log",)))
        embedding_bytes = int(one(conn, logs, ("embeddings_log",)))
        rollup = (
            "SELECT pg_total_relation_size('drift.embedding_rollup')"
            " + pg_total_relation_size('drift.interaction_rollup')"
        )
        minute = size(rollup)
        conn.execute("SELECT drift.compact_rollups_hourly(interval '1 day')")
        conn.execute("VACUUM FULL drift.embedding_rollup, drift.interaction_rollup")
        hourly = size(rollup)
    return {
        "interaction_bytes_per_row": round(interaction_bytes / rows),
        "embedding_bytes_per_row": round(embedding_bytes / rows),
        "rollup_bytes_per_model_day_minute_buckets": minute,
        "rollup_bytes_per_model_day_hourly": hourly,
    }


def models_per_minute(url: str, models: int, per_window: int, dims: int) -> dict[str, float]:
    """drift.evaluate() over `models` models with a baseline hour and a current hour each."""
    with connect(url, autocommit=True) as conn:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        names = [f"m{i:04d}" for i in range(models)]
        conn.execute("INSERT INTO drift.models (model, auto_evaluate) SELECT unnest(%s::text[]), false", (names,))
        for start in (now - timedelta(hours=3), now - timedelta(minutes=60)):
            conn.execute(
                """INSERT INTO drift.interaction_log (model, created_at, response, toxicity, correct)
                   SELECT m, %(s)s + j * (interval '1 hour' / %(n)s), 'ok', 0.01, j %% 7 > 0
                   FROM unnest(%(names)s::text[]) m, generate_series(0, %(n)s - 1) j""",
                {"s": start, "n": per_window, "names": names},
            )
            conn.execute(
                """INSERT INTO drift.embeddings_log (model, created_at, embedding)
                   SELECT m, %(s)s + j * (interval '1 hour' / %(n)s),
                          (SELECT array_agg(sin(j * 3 + d + length(m)))::real[]::vector
                           FROM generate_series(1, %(d)s) d)
                   FROM unnest(%(names)s::text[]) m, generate_series(0, %(n)s - 1) j""",
                {"s": start, "n": per_window, "names": names, "d": dims},
            )
        # One statement per model (as the worker or an operator sets them): in one statement the
        # calibration of each model would re-scan the sample table of all models before it.
        t0 = time.perf_counter()
        for name in names:
            conn.execute(
                "SELECT count(*) FROM drift.set_baseline(%s, %s, %s)",
                (name, now - timedelta(hours=3), now - timedelta(hours=2)),
            )
        baseline_s = time.perf_counter() - t0
        conn.execute("SELECT drift.compact_rollups()")
        conn.execute("ANALYZE")
        conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (now,))  # first pass: novelty scoring, events
        seconds = median_time(2, lambda: conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (now,)).fetchone(),
                              warmup=False)  # fmt: skip
    return {
        "models": models,
        "dims": dims,
        "rows_per_window": per_window,
        "evaluate_all_s": round(seconds, 3),
        "evaluate_ms_per_model": round(seconds / models * 1000, 3),
        "models_per_minute": round(models / seconds * 60),
        "set_baseline_ms_per_model": round(baseline_s / models * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--skip-models", action="store_true", help="leave out the models-per-minute case")
    args = parser.parse_args()
    days, models = (10, 100) if args.quick else (args.days, args.models)
    rows_per_day, repeats = (100, 3) if args.quick else (300, 5)
    result: dict[str, Any] = {"benchmark": "partitions", "dims": DIMS, "rows_per_model_day": rows_per_day}
    with fresh_database() as url:
        one = case(url, 1, rows_per_day, repeats)
    with fresh_database() as url:
        many = case(url, days, rows_per_day, repeats)
    result["1_day"], result[f"{days}_days"] = one, many
    result["ratios_1_day_over_many"] = {
        "ingest_speed": round(many["ingest_rows_per_s"] / one["ingest_rows_per_s"], 3),
        "row_by_row_speed": round(many["row_by_row_embeddings_per_s"] / one["row_by_row_embeddings_per_s"], 3),
        "evaluate_speed": round(one["evaluate_s"] / many["evaluate_s"], 3),
        "label_update_speed": round(one["label_update_ms"] / many["label_update_ms"], 3),
        "label_by_id_alone_speed": round(one["label_by_id_alone_ms"] / many["label_by_id_alone_ms"], 3),
    }
    for dims in (384, 1536):
        with fresh_database() as url:
            result[f"storage_{dims}d"] = storage(url, dims, 1440)
    if not args.skip_models:
        print("growth and storage measured; now the models-per-minute case", file=sys.stderr)
        with fresh_database() as url:
            result["models_per_minute"] = models_per_minute(url, models, 60, 64 if args.quick else DIMS)
    emit(result)


if __name__ == "__main__":
    main()
