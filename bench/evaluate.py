"""drift.evaluate() as the history grows and as the current window grows, same run.

Every timed evaluation is what the scheduler runs each minute in production: one minute of
new traffic is logged first (not timed), then `drift.evaluate()` folds its rollup deltas,
scores the new bucket's novelty against the baseline sample and writes the report, the
evaluation history and any events. The data is drift-free 384-d embeddings.

Cases, each a fresh database, all measured in turn (A B C D A B C D ...) so the shared
machine's noise falls on every case alike; each figure is a median:
- history growth: 100k, then 1M embeddings over the 7 days before the current window (the
  baseline is the first six days), the same current window of 600 rows an hour in both.
  Targets (issue 9): time at 1M over time at 100k <= 1.3, and >= 100x faster than a naive
  scan (the average of the raw rows of the baseline and of the current window) at 1M, the
  naive scan timed in turn with the evaluations of the 1M case.
- window growth: 600, 6,000 and 60,000 rows an hour in the current window (and logged each
  minute), over the same 100k rows of history; ratios against the 600 case.

- sequential test: what folding each new minute into the sequential embedding test
  (mean_shift_evidence) costs. Twins of the 600 and 6,000 cases (the same rows) whose
  calibration has no evidence_bias, which the fold skips: the ratio on/off of the evaluation
  after one minute of traffic. The same for the whitened window test (whitened_mean_shift):
  twins whose calibration has no whitened traces, which the report skips. And on the 600 and
  6,000 cases, the fold alone: of the newest bucket (what a per-minute evaluation folds), and
  one full catch-up fold of evidence_horizon (6 hours) as after a baseline is set (its
  evidence deleted and folded again in a transaction rolled back, only the fold timed).

Also per case: `re_evaluate_s` (evaluating again with nothing new: every bucket cached) and
`cold_window_s` (the first evaluation after the baseline is set: every bucket of the window
is scored; timed once, so noisier).

    python -m bench.evaluate [--small 100000] [--large 1000000] [--repeats 30] [--dims 384]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

import driftloop
from bench.common import emit, fresh_database, interleaved_medians
from driftloop.database import connect

MODEL = "bench-evaluate"
DIMS = 384  # the default; --dims 1536 measures the whitened tests at the width of ada-002
DAYS = 7
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
WINDOW_RATES = (600, 6_000, 60_000)  # rows an hour in the current window
SEQUENTIAL_RATES = (600, 6_000)  # window rates whose cost with and without the sequential test is compared
# Twins of those cases, each with one test switched off by nulling the calibration column it needs.
TESTS_OFF = {"sequential": "evidence_bias", "whitened": "whitened_trace2"}


@dataclass
class Case:
    """One database: its history, its current window, and a clock that moves a minute per step."""

    url: str
    history_rows: int
    per_hour: int
    end: datetime
    conn: psycopg.Connection[Any] = field(init=False)
    client: driftloop.Client = field(init=False)
    rng: np.random.Generator = field(init=False)
    center: np.ndarray = field(init=False)
    as_of: datetime = field(init=False)
    folded: int = field(init=False, default=0)  # buckets of the last timed fold

    switched_off: str | None = None  # an embedding_calibration column nulled: that test is skipped
    dims: int = DIMS

    def __post_init__(self) -> None:
        self.conn = connect(self.url, autocommit=True)
        self.conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
        self.client = driftloop.connect(self.url)
        self.center = np.random.default_rng(0).normal(size=self.dims)  # the same topic mix in every case
        self.rng = np.random.default_rng(self.history_rows + self.per_hour)
        self.as_of = self.end

    def log(self, rows: int, start: datetime, span: timedelta) -> None:
        """`rows` drift-free embeddings spread evenly over [start, start + span)."""
        for lo in range(0, rows, 20_000):
            n = min(20_000, rows - lo)
            x = self.center + self.rng.normal(scale=3.0, size=(n, self.dims))
            x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
            stamps = [start + span * ((lo + i + 0.5) / rows) for i in range(n)]
            self.client.log_embeddings(MODEL, x, created_at=stamps)

    def load(self) -> None:
        # History over the 7 days before the current window; the window itself at its own rate.
        self.log(self.history_rows, self.end - DAYS * timedelta(days=1), DAYS * timedelta(days=1) - HOUR)
        self.log(self.per_hour, self.end - HOUR, HOUR)

    def settle(self) -> float:
        """Baseline, then a database in steady state (autovacuum would have long run); cold evaluation time."""
        self.client.set_baseline(MODEL, self.end - DAYS * timedelta(days=1), self.end - timedelta(days=1))
        if self.switched_off is not None:
            nulled = sql.SQL("UPDATE drift.embedding_calibration SET {} = NULL WHERE model = %s")
            self.conn.execute(nulled.format(sql.Identifier(self.switched_off)), (MODEL,))
        self.conn.execute("SELECT drift.compact_rollups()")
        self.conn.execute("VACUUM ANALYZE")
        start = time.perf_counter()
        self.conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (self.as_of,)).fetchone()
        return time.perf_counter() - start

    def step(self) -> float:
        """Log the next minute of traffic (not timed), then time the evaluation at its end."""
        self.log(max(1, round(self.per_hour / 60)), self.as_of, MINUTE)
        self.as_of += MINUTE
        start = time.perf_counter()
        self.conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (self.as_of,)).fetchone()
        return time.perf_counter() - start

    def re_evaluate(self) -> float:
        start = time.perf_counter()
        self.conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (self.as_of,)).fetchone()
        return time.perf_counter() - start

    def refold(self, unfold: str) -> float:
        """Time the fold after deleting the evidence rows `unfold` selects (rolled back after)."""
        with self.conn.transaction(force_rollback=True):
            self.conn.execute(unfold, {"m": MODEL})
            start = time.perf_counter()
            row = self.conn.execute("SELECT drift.embedding_evidence_fold(%s, %s)", (MODEL, self.as_of)).fetchone()
            elapsed = time.perf_counter() - start
        assert row is not None and row[0] > 0, "the fold folded no bucket"
        self.folded = int(row[0])
        return elapsed

    def catch_up_fold(self) -> float:
        """One fold of the whole evidence_horizon before now, as the first after a baseline is set."""
        return self.refold("DELETE FROM drift.embedding_evidence WHERE model = %(m)s")

    def fold_one(self) -> float:
        """The fold of one new bucket, the sequential test's share of a per-minute evaluation."""
        return self.refold(
            "DELETE FROM drift.embedding_evidence WHERE model = %(m)s"
            " AND bucket = (SELECT max(bucket) FROM drift.embedding_evidence WHERE model = %(m)s)"
        )

    def naive(self) -> float:
        """What the rollups save: averaging the raw rows of the baseline and of the current window."""
        start = time.perf_counter()
        self.conn.execute(
            "SELECT (SELECT avg(embedding) FROM drift.embeddings_log"
            "        WHERE model = %(m)s AND created_at >= %(cs)s AND created_at < %(ce)s)"
            "   <=> (SELECT avg(embedding) FROM drift.embeddings_log"
            "        WHERE model = %(m)s AND created_at >= %(bs)s AND created_at < %(be)s)",
            {"m": MODEL, "cs": self.as_of - HOUR, "ce": self.as_of,
             "bs": self.end - DAYS * timedelta(days=1), "be": self.end - timedelta(days=1)},
        ).fetchall()  # fmt: skip
        return time.perf_counter() - start

    def rows(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM drift.embeddings_log").fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        self.client.close()
        self.conn.close()


def window_case(rate: int) -> str:
    """The case with 100k rows of history and this window rate."""
    return "history_small" if rate == WINDOW_RATES[0] else f"window_{rate}"


def cases(stack: ExitStack, small: int, large: int, end: datetime, dims: int) -> Iterator[tuple[str, Case]]:
    wanted: list[tuple[str, int, int, str | None]] = [
        ("history_small", small, WINDOW_RATES[0], None), ("history_large", large, WINDOW_RATES[0], None)]
    wanted += [(window_case(rate), small, rate, None) for rate in WINDOW_RATES[1:]]
    # The twins without one test log the same rows (the data is seeded by the sizes).
    wanted += [(f"{test}_off_{rate}", small, rate, column) for test, column in TESTS_OFF.items()
               for rate in SEQUENTIAL_RATES]  # fmt: skip
    for name, history_rows, per_hour, switched_off in wanted:
        case = Case(stack.enter_context(fresh_database()), history_rows, per_hour, end, switched_off, dims)
        stack.callback(case.close)
        print(f"loading {name}: {history_rows} rows of history, {per_hour} an hour in the window", file=sys.stderr)
        case.load()
        yield name, case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--dims", type=int, default=DIMS)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with ExitStack() as stack:
        loaded = dict(cases(stack, args.small, args.large, end, args.dims))
        with psycopg.connect(next(iter(loaded.values())).url, autocommit=True) as any_conn:
            any_conn.execute("CHECKPOINT")  # the loads' dirty pages are written before anything is timed
        cold = {name: case.settle() for name, case in loaded.items()}
        steps = interleaved_medians(args.repeats, {name: case.step for name, case in loaded.items()})
        again = interleaved_medians(args.repeats, {name: case.re_evaluate for name, case in loaded.items()})
        sequential_on = {rate: loaded[window_case(rate)] for rate in SEQUENTIAL_RATES}
        fold_one = interleaved_medians(args.repeats, {str(rate): case.fold_one for rate, case in sequential_on.items()})
        catch_up = interleaved_medians(
            max(3, args.repeats // 3), {str(rate): case.catch_up_fold for rate, case in sequential_on.items()}
        )
        large = loaded["history_large"]
        # The naive scan in turn with the large case's evaluations, so both see the same load.
        vs_naive = interleaved_medians(5, {"evaluate": large.step, "re_evaluate": large.re_evaluate,
                                           "naive": large.naive}, warmup=False)  # fmt: skip
        per_case = {
            name: {"history_rows": case.history_rows, "window_rows_per_hour": case.per_hour, "rows": case.rows(),
                   "evaluate_s": round(steps[name], 6), "re_evaluate_s": round(again[name], 6),
                   "cold_window_s": round(cold[name], 4)}
            for name, case in loaded.items()
        }  # fmt: skip
    emit({
        "benchmark": "evaluate",
        "dims": args.dims,
        "protocol": "each timed evaluation follows one minute of new traffic (not timed); medians, cases interleaved",
        "baseline_window": "first 6 of the 7 days of history",
        "current_window": "last hour",
        "cases": per_case,
        "naive_avg_s_at_large": round(vs_naive["naive"], 6),
        "speedup_vs_naive_at_large": round(vs_naive["naive"] / vs_naive["evaluate"], 1),
        "re_evaluate_speedup_vs_naive_at_large": round(vs_naive["naive"] / vs_naive["re_evaluate"], 1),
        "evaluate_large_over_small": round(steps["history_large"] / steps["history_small"], 3),
        "re_evaluate_large_over_small": round(again["history_large"] / again["history_small"], 3),
        "window_growth": {
            str(rate): {"evaluate_s": round(steps[name], 6),
                        "over_600": round(steps[name] / steps["history_small"], 3),
                        "re_evaluate_over_600": round(again[name] / again["history_small"], 3)}
            for rate, name in ((rate, window_case(rate)) for rate in WINDOW_RATES)
        },
        "sequential_test": {
            str(rate): {
                "evaluate_s": round(steps[window_case(rate)], 6),
                "evaluate_without_s": round(steps[f"sequential_off_{rate}"], 6),
                "on_over_off": round(steps[window_case(rate)] / steps[f"sequential_off_{rate}"], 3),
                "fold_one_bucket_s": round(fold_one[str(rate)], 6),
                "catch_up_fold_s": round(catch_up[str(rate)], 4),
                "catch_up_buckets": sequential_on[rate].folded,
            }
            for rate in SEQUENTIAL_RATES
        },
        "whitened_test": {
            str(rate): {
                "evaluate_s": round(steps[window_case(rate)], 6),
                "evaluate_without_s": round(steps[f"whitened_off_{rate}"], 6),
                "on_over_off": round(steps[window_case(rate)] / steps[f"whitened_off_{rate}"], 3),
            }
            for rate in SEQUENTIAL_RATES
        },
        "targets": {"speedup_vs_naive_at_large": ">= 100", "evaluate_large_over_small": "<= 1.3"},
    })  # fmt: skip


if __name__ == "__main__":
    main()
