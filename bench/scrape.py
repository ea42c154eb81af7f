"""Cost of a /metrics scrape against a bare `SELECT 1` round trip, as the logs grow.

50 models with steady traffic (the same embeddings per hour throughout). Phase "small":
10% of `--rows`, over the last two days (the first of them is every model's baseline).
Phase "large": the other 90% added as older history, over the days before, at the same
rate, so the recent windows the drift views read are unchanged and only the amount
logged grows. After each phase: the best of 30 timings of an HTTP GET /metrics on a real
`driftloop metrics` process, of the scrape query alone, and of `SELECT 1`, same run.
The scrape must not grow with the rows logged: `growth_large_over_small` should stay
near 1.

    python -m bench.scrape [--rows 1000000] [--dims 16]
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
        scrape_http = best_ms(lambda: http.get(metrics_url).raise_for_status())
        text = http.get(metrics_url).text
        if "driftloop_database_up 1.0" not in text:
            raise SystemExit("the scrape could not read the drift views; see the `driftloop metrics` log")
        series = sum(1 for line in text.splitlines() if line.startswith("driftloop_drift_score"))
    return {
        "rows_logged": logged,
        "select1_ms": select1,
        "scrape_query_ms": scrape_query,
        "scrape_http_ms": scrape_http,
        "score_series": series,
        "scrape_http_over_select1": round(scrape_http / select1, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dims", type=int, default=16)
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
            small = measure(url, metrics_url)
            load_large = log(url, args.rows - small_rows, args.dims, 2, now - SPAN, SPAN * 9)
            large = measure(url, metrics_url)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    growth = large["scrape_http_ms"] / small["scrape_http_ms"]
    emit(
        {
            "benchmark": "scrape",
            "what": f"GET /metrics of `driftloop metrics` with {MODELS} models, embeddings of {args.dims} dims",
            "small": {**small, "load_s": round(load_small, 1)},
            "large": {**large, "load_s": round(load_large, 1)},
            "growth_large_over_small": round(growth, 2),
            "target": "growth near 1 (scrape cost independent of rows logged)",
        }
    )


if __name__ == "__main__":
    main()
