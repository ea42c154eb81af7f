"""drift.evaluate() and the drift_status view against a naive avg() over the raw rows, same run.

Embeddings are logged over 7 days (100k, then 1M rows, 384-d). The baseline is the first six
days, the current window the last hour: the naive query averages the raw rows of exactly those
two windows; driftloop reads its rollups and the frozen baseline. Targets (issue 2): >= 100x
faster than naive at 1M rows; time at 1M / time at 100k <= 1.3.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

import driftloop
from bench.common import emit, fresh_database, median_time
from driftloop.database import connect

MODEL = "bench-evaluate"
DIMS = 384
DAYS = 7


def load(client: driftloop.Client, rows: int, end: datetime, seed: int) -> None:
    rng = np.random.default_rng(seed)
    center = rng.normal(size=DIMS)
    span = DAYS * 86400
    for start in range(0, rows, 20_000):
        n = min(20_000, rows - start)
        x = center + rng.normal(scale=3.0, size=(n, DIMS))
        x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        seconds = np.sort(rng.uniform(0, span, n))
        stamps = [end - timedelta(seconds=span - float(s)) for s in seconds]
        client.log_embeddings(MODEL, x, created_at=stamps)


def measure(url: str, end: datetime, repeats: int) -> dict[str, float]:
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT drift.compact_rollups()")
        conn.execute("VACUUM ANALYZE drift.embeddings_log, drift.embedding_rollup, drift.embedding_rollup_delta")
        cur_start, cur_end = conn.execute(
            "SELECT window_start, window_end FROM drift.report_config(%s)", (end,)
        ).fetchone()
        base_start, base_end = end - timedelta(days=DAYS), end - timedelta(days=1)

        def naive() -> None:
            conn.execute(
                "SELECT (SELECT avg(embedding) FROM drift.embeddings_log"
                "        WHERE model = %(m)s AND created_at >= %(cs)s AND created_at < %(ce)s)"
                "   <=> (SELECT avg(embedding) FROM drift.embeddings_log"
                "        WHERE model = %(m)s AND created_at >= %(bs)s AND created_at < %(be)s)",
                {"m": MODEL, "cs": cur_start, "ce": cur_end, "bs": base_start, "be": base_end},
            ).fetchall()

        def evaluate() -> None:
            conn.execute("SELECT * FROM drift.evaluate(%s)", (end,)).fetchall()

        def status() -> None:
            conn.execute("SELECT * FROM drift.drift_status").fetchall()

        # The view reads at now(); as in production (the log triggers or the worker evaluate
        # every minute), an evaluation has prepared the current window (novelty cache).
        conn.execute("SELECT * FROM drift.evaluate()").fetchall()

        rows = conn.execute("SELECT count(*) FROM drift.embeddings_log").fetchone()[0]
        return {
            "rows": rows,
            "evaluate_s": round(median_time(repeats, evaluate), 6),
            "drift_status_s": round(median_time(repeats, status), 6),
            "naive_avg_s": round(median_time(max(3, repeats // 10), naive), 6),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    # The drift_status view evaluates at now(): the 7 days end at the current bucket.
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
        client = driftloop.connect(url)
        load(client, args.small, end, seed=1)
        client.set_baseline(MODEL, end - timedelta(days=DAYS), end - timedelta(days=1))
        small = measure(url, end, args.repeats)
        load(client, args.large - args.small, end, seed=2)
        client.set_baseline(MODEL, end - timedelta(days=DAYS), end - timedelta(days=1))
        large = measure(url, end, args.repeats)
        client.close()
    emit({
        "benchmark": "evaluate",
        "dims": DIMS,
        "baseline_window": "first 6 of 7 days",
        "current_window": "last hour",
        "small": small,
        "large": large,
        "speedup_vs_naive_at_large": round(large["naive_avg_s"] / large["evaluate_s"], 1),
        "status_speedup_vs_naive_at_large": round(large["naive_avg_s"] / large["drift_status_s"], 1),
        "evaluate_large_over_small": round(large["evaluate_s"] / small["evaluate_s"], 3),
        "status_large_over_small": round(large["drift_status_s"] / small["drift_status_s"], 3),
        "targets": {"speedup_vs_naive_at_large": ">= 100", "large_over_small": "<= 1.3"},
    })  # fmt: skip


if __name__ == "__main__":
    main()
