"""Shared by the benchmarks: a fresh migrated database, timing, the one-JSON-object output."""

from __future__ import annotations

import atexit
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from driftloop.database import with_dbname


def server_url() -> str:
    """DATABASE_URL's server, else an embedded server in a throwaway DRIFTLOOP_HOME (stopped at exit)."""
    from driftloop import database

    if not os.environ.get("DATABASE_URL") and not os.environ.get("DRIFTLOOP_HOME"):
        os.environ["DRIFTLOOP_HOME"] = tempfile.mkdtemp(prefix="driftloop-bench-")
        atexit.register(database.stop_embedded)
    return database.database_url()


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new database with driftloop's schema, dropped afterwards."""
    from driftloop import migrations

    admin = server_url()
    name = f"dl_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(admin, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        migrations.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def best_of(repeats: int, fn: Callable[[], Any], setup: Callable[[], Any] | None = None) -> float:
    """Fastest wall time of `repeats` runs (the least disturbed by a shared machine)."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def median_time(repeats: int, fn: Callable[[], Any], warmup: bool = True) -> float:
    """Median of `repeats` timings (after one warm-up run): robust to a noisy neighbour."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(repeats: int, steps: dict[str, Callable[[], float]], warmup: bool = True) -> dict[str, float]:
    """Median of `repeats` runs of each step, the steps taken in turn (A B C A B C ...).

    Each step times its own work and returns the seconds (so it may prepare, untimed, what
    it measures). Taking the cases in turn spreads a shared machine's slow spells over all
    of them, so their ratios hold even when the absolute times drift during the run.
    """
    if warmup:
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(step())
    return {name: statistics.median(t) for name, t in times.items()}


@dataclass
class Cost:
    wall_s: float
    cpu_s: float  # this process plus the database's backends: what the work itself burnt


def backend_cpu(url: str) -> float:
    """CPU seconds used so far by every backend connected to this database (same machine)."""
    import psutil

    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )]  # fmt: skip
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def measure(url: str, fn: Callable[[], Any]) -> Cost:
    cpu0, db0, wall0 = time.process_time(), backend_cpu(url), time.perf_counter()
    fn()
    wall = time.perf_counter() - wall0
    return Cost(wall, time.process_time() - cpu0 + backend_cpu(url) - db0)


def compare(
    url: str, repeats: int, baseline: Callable[[], Any], subject: Callable[[], Any], setup: Callable[[], Any]
) -> dict[str, float]:
    """Alternate baseline and subject runs; best wall and CPU time of each; subject/baseline speed.

    Alternating spreads the shared machine's noise over both sides. CPU time (client plus
    database backends) is the steadier figure when other work competes for the cores.
    """
    base: list[Cost] = []
    subj: list[Cost] = []
    for _ in range(repeats):
        setup()
        base.append(measure(url, baseline))
        setup()
        subj.append(measure(url, subject))
    bw, sw = min(c.wall_s for c in base), min(c.wall_s for c in subj)
    bc, sc = min(c.cpu_s for c in base), min(c.cpu_s for c in subj)
    return {
        "baseline_wall_s": round(bw, 4), "subject_wall_s": round(sw, 4), "wall_ratio": round(bw / sw, 3),
        "baseline_cpu_s": round(bc, 4), "subject_cpu_s": round(sc, 4), "cpu_ratio": round(bc / sc, 3),
    }  # fmt: skip


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
