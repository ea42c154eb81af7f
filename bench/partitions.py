"""Growth: ingestion, evaluation and late labels with 90 days of partitions vs 1 day; storage; models/minute.

Cases, all in one run so the ratios compare like with like on a shared machine:
- `1_day` and `90_days`: the same models, one with a single day of history, one with 90
  daily partitions full of rows. Measured in each: ingest rows/s (SDK batches of
  interactions with 384-d embeddings, today's partition), `drift.evaluate()` seconds after a
  batch of new traffic (as every minute in production: the new bucket is scored) and again
  with nothing new, and a late label: the SDK's `feedback()` (the id's partition step first,
  then an update pruned to that partition), and, for comparison, `UPDATE ... WHERE id = ...`
  by id alone, which plans and probes every partition's primary key. Both databases are built
  first, then every operation is timed on each in turn (medians). Ratios are 1_day / 90_days speed (1.0 = no
  slowdown).
- storage: bytes per logged interaction and per embedding row (384-d and 1536-d), and rollup
  bytes per model and day at minute buckets and after hourly compaction.
- `models_per_minute`: drift.evaluate() over 1,000 models, each with a baseline and a
  current window.

    python -m bench.partitions [--days 90] [--models 1000] [--quick] [--skip-models | --only-models]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

import driftloop
from bench.common import emit, fresh_database, interleaved_medians, median_time
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
    # Written in seconds here, over 90 days in life, where autovacuum has long cleared the
    # rollup delta tables (a queue: every compaction deletes all their rows). Without this the
    # first measurements would step over the back-fill's dead delta rows.
    conn.execute("VACUUM ANALYZE")


def batch(rng: np.random.Generator, n: int, at: datetime) -> list[dict[str, Any]]:
    x = rng.normal(size=(n, DIMS)).astype(np.float32)
    return [
        {"model": MODELS[i % 2], "created_at": at, "prompt": TEXT, "response": ANSWER, "toxicity": 0.01,
         "correct": True, "latency_ms": 250.0, "embedding": x[i].tolist()}
        for i in range(n)
    ]  # fmt: skip


class Case:
    """One database with `days` of history; each method times one operation and returns seconds."""

    def __init__(self, url: str, days: int, rows_per_day: int) -> None:
        self.conn = connect(url, autocommit=True)
        history(self.conn, days, rows_per_day)
        self.partitions = one(self.conn, "SELECT count(*) FROM drift.log_partitions() WHERE NOT is_default")
        self.client = driftloop.connect(url)
        self.rng = np.random.default_rng(days)
        self.rows = batch(self.rng, 500, datetime.now(UTC))
        self.vectors = self.rng.normal(size=(100, DIMS)).astype(np.float32)
        self.ids: list[int] = []
        self.k = 0

    def ingest(self) -> float:
        start = time.perf_counter()
        self.client.log_interactions(self.rows)
        return time.perf_counter() - start

    def row_by_row(self) -> float:
        # An app logging one embedding per statement, 100 in a transaction (the staged path).
        start = time.perf_counter()
        with self.conn.transaction():
            for v in self.vectors:
                self.conn.execute("INSERT INTO drift.embeddings_log (model, embedding) VALUES (%s, %s)", (MODELS[0], v))
        return time.perf_counter() - start

    def ensure(self) -> float:
        start = time.perf_counter()
        self.conn.execute("SELECT drift.ensure_partitions()").fetchone()
        return time.perf_counter() - start

    def next_id(self) -> int:
        if not self.ids:
            sample = "SELECT id FROM drift.interaction_log ORDER BY random() LIMIT 200"
            self.ids = [r[0] for r in self.conn.execute(sample)]
        self.k += 1
        return int(self.ids[self.k % len(self.ids)])

    def label(self) -> float:
        """The SDK's late label: the id's partition step first, then an update pruned to it."""
        row_id = self.next_id()
        start = time.perf_counter()
        self.client.feedback(row_id, feedback=1)
        return time.perf_counter() - start

    def label_by_id_alone(self) -> float:
        row_id = self.next_id()
        start = time.perf_counter()
        self.conn.execute("UPDATE drift.interaction_log SET feedback = 1 WHERE id = %s", (row_id,))
        return time.perf_counter() - start

    def evaluate_after_traffic(self) -> float:
        """As every minute in production: new traffic arrived (not timed), then the evaluation."""
        self.client.log_interactions(batch(self.rng, 20, datetime.now(UTC)))
        return self.re_evaluate()

    def re_evaluate(self) -> float:
        start = time.perf_counter()
        self.conn.execute("SELECT count(*) FROM drift.evaluate()").fetchone()
        return time.perf_counter() - start

    def close(self) -> None:
        self.client.close()
        self.conn.close()


def growth(one_day: Case, many: Case, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Each operation timed on both databases in turn (medians), so the ratios compare like with like."""
    cases = {"one": one_day, "many": many}
    figures: dict[str, dict[str, float]] = {name: {"partitions": c.partitions} for name, c in cases.items()}
    for metric, make, runs, scale in (
        ("ingest_rows_per_s", lambda c: c.ingest, repeats, None),
        ("row_by_row_embeddings_per_s", lambda c: c.row_by_row, repeats, None),
        ("ensure_partitions_ms", lambda c: c.ensure, repeats * 4, 1000.0),
        ("label_update_ms", lambda c: c.label, repeats * 20, 1000.0),
        ("label_by_id_alone_ms", lambda c: c.label_by_id_alone, repeats * 20, 1000.0),
        ("evaluate_s", lambda c: c.evaluate_after_traffic, repeats * 6, 1.0),
        ("re_evaluate_s", lambda c: c.re_evaluate, repeats * 6, 1.0),
    ):
        medians = interleaved_medians(runs, {name: make(c) for name, c in cases.items()})
        for name, seconds in medians.items():
            if scale is None:  # a rate: rows per second
                figures[name][metric] = round((500 if metric.startswith("ingest") else 100) / seconds)
            else:
                figures[name][metric] = round(seconds * scale, 4)
    return figures["one"], figures["many"]


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
    sections = parser.add_mutually_exclusive_group()
    sections.add_argument("--skip-models", action="store_true", help="leave out the models-per-minute case")
    sections.add_argument("--only-models", action="store_true", help="run the models-per-minute case alone")
    args = parser.parse_args()
    days, models = (10, 100) if args.quick else (args.days, args.models)
    rows_per_day, repeats = (100, 3) if args.quick else (300, 5)
    if args.only_models:
        with fresh_database() as url:
            emit(
                {
                    "benchmark": "partitions",
                    "models_per_minute": models_per_minute(url, models, 60, 64 if args.quick else DIMS),
                }
            )
        return
    result: dict[str, Any] = {"benchmark": "partitions", "dims": DIMS, "rows_per_model_day": rows_per_day}
    with fresh_database() as url_one, fresh_database() as url_many:
        one_day, many_days = Case(url_one, 1, rows_per_day), Case(url_many, days, rows_per_day)
        try:
            one, many = growth(one_day, many_days, repeats)
        finally:
            one_day.close()
            many_days.close()
    result["1_day"], result[f"{days}_days"] = one, many
    result["ratios_1_day_over_many"] = {
        "ingest_speed": round(many["ingest_rows_per_s"] / one["ingest_rows_per_s"], 3),
        "row_by_row_speed": round(many["row_by_row_embeddings_per_s"] / one["row_by_row_embeddings_per_s"], 3),
        "evaluate_speed": round(one["evaluate_s"] / many["evaluate_s"], 3),
        "re_evaluate_speed": round(one["re_evaluate_s"] / many["re_evaluate_s"], 3),
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
