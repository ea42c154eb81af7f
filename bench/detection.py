"""Detection quality and cost: driftloop's defaults against the seed's fixed rule, same run.

1. Windows (issue 5's protocol): reference 2,000 vs window 500 topic-mixture embeddings,
   384-d and 1536-d, 50 windows per case. Per case the share of windows flagged by
   driftloop's window tests (centroid mean test and novelty rate, Bonferroni over the two at
   alpha), by driftloop's event rule (`drifted`: the per-evaluation level that keeps repeated
   evaluation at one false event per 30 days), and by the seed's rule (centroid cosine > 0.15).
2. Streams with a change point (3 per case), 100 embeddings and 100 interactions a minute, evaluated every
   minute with drift.evaluate(as_of): minutes from the change to the first event (driftloop)
   and to the first minute the seed's rule fires; events and seed-rule minutes before the change
   are false alarms. Baselines are 6 hours of traffic (not a day) to keep the run short.
3. Drift-free stream, evaluated every minute (reduced protocol: HOURS simulated hours, not 30
   days): events raised at the defaults (with a worker resolving each at once, so the cooldown
   and not an open event suppresses repeats), and for several false_alarm_interval values the
   level's predicted false events against the up-crossings observed in the same p-values.
4. Cost: reference 100,000 vs window 20,000 (384-d): calibration, a cold check (the window's
   embeddings searched, at most novelty_per_bucket = 200 a minute: 12,000 of the 20,000), a
   warm check (novelty cached per bucket, as evaluation every minute keeps it), the warm
   check again with 4x the history, and a naive check in the same run
   (the raw rows of both windows read into numpy; the same mean statistic and an exact
   nearest-neighbour search over the same 2,000-row sample).
Evidently's default test runs in (1) and (4) only when the optional `bench` extra is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

import driftloop
from bench.common import emit, fresh_database, median_time
from driftloop.database import connect
from tests.support.detection_cases import EMBEDDING_CASES, EmbeddingCase, TopicTraffic, interaction_rows, spread_times
from tests.support.helpers import add_model

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SEED_CENTROID_THRESHOLD = 0.15
BASE_RATES = {"refusal": 0.04, "toxic": 0.01, "accuracy": 0.90}


def scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def report(conn: psycopg.Connection[Any], model: str, as_of: datetime) -> dict[str, dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return {r["metric"]: r for r in cur.execute("SELECT * FROM drift.drift_report(%s, %s)", (as_of, [model]))}


def evidently_check() -> Callable[[np.ndarray, np.ndarray], bool] | None:
    """Evidently's default embedding drift test, when the optional `bench` extra is installed."""
    if importlib.util.find_spec("evidently") is None:
        return None
    import evidently  # type: ignore[import-not-found]  # noqa: F401  (initialise before its legacy modules)
    import pandas as pd

    try:  # evidently >= 0.7 keeps the Report/ColumnMapping API under `legacy`
        from evidently.legacy.metrics import EmbeddingsDriftMetric  # type: ignore[import-not-found]
        from evidently.legacy.pipeline.column_mapping import ColumnMapping  # type: ignore[import-not-found]
        from evidently.legacy.report import Report  # type: ignore[import-not-found]
    except ImportError:
        from evidently import ColumnMapping  # type: ignore[import-not-found,no-redef]
        from evidently.metrics import EmbeddingsDriftMetric  # type: ignore[import-not-found,no-redef]
        from evidently.report import Report  # type: ignore[import-not-found,no-redef]

    def check(ref: np.ndarray, cur: np.ndarray) -> bool:
        cols = [f"e{i}" for i in range(ref.shape[1])]
        mapping = ColumnMapping(embeddings={"e": cols})
        rep = Report(metrics=[EmbeddingsDriftMetric("e")])
        rep.run(
            reference_data=pd.DataFrame(ref, columns=cols),
            current_data=pd.DataFrame(cur, columns=cols),
            column_mapping=mapping,
        )
        return bool(rep.as_dict()["metrics"][0]["result"]["drift_detected"])

    return check


# -- 1. windows --------------------------------------------------------------------------------
def windows(url: str, dims: int, per_case: int, seed: int) -> dict[str, Any]:
    model = f"windows-{dims}"
    rng = np.random.default_rng(seed)
    traffic = TopicTraffic(dims, seed)
    evidently = evidently_check()
    ref = traffic.sample(2000, EMBEDDING_CASES[0], rng)
    ends: dict[str, list[datetime]] = {}
    data: dict[str, list[np.ndarray]] = {}
    with driftloop.connect(url) as client, connect(url, autocommit=True) as conn:
        add_model(conn, model)
        client.log_embeddings(model, ref, created_at=spread_times(T0, 24 * HOUR, 2000, rng))
        conn.execute("SELECT drift.compact_rollups()")
        conn.execute("SELECT count(*) FROM drift.set_baseline(%s, %s, %s)", (model, T0, T0 + 24 * HOUR))
        hour = T0 + 24 * HOUR
        for case in EMBEDDING_CASES:
            for _ in range(per_case):
                x = traffic.sample(500, case, rng)
                client.log_embeddings(model, x, created_at=spread_times(hour, HOUR, 500, rng))
                hour += HOUR
                ends.setdefault(case.name, []).append(hour)
                if evidently:
                    data.setdefault(case.name, []).append(x)
        conn.execute("SELECT drift.compact_rollups()")
        out: dict[str, Any] = {}
        for case in EMBEDDING_CASES:
            window_test, event_rule, seed_rule, evid, secs = [], [], [], [], []
            for i, as_of in enumerate(ends[case.name]):
                start = time.perf_counter()
                rows = report(conn, model, as_of)
                secs.append(time.perf_counter() - start)
                c, v = rows["centroid_distance"], rows["novelty_rate"]
                window_test.append(min(c["p_value"], v["p_value"]) < c["details"]["alpha"] / 2)
                event_rule.append(c["drifted"] or v["drifted"])
                seed_rule.append(c["score"] > SEED_CENTROID_THRESHOLD)
                if evidently:
                    evid.append(evidently(ref, data[case.name][i]))
            key = "false_alarm_rate" if case.name == "no drift" else "detection_rate"
            out[case.name] = {
                f"driftloop_window_test_{key}": round(float(np.mean(window_test)), 3),
                f"driftloop_event_rule_{key}": round(float(np.mean(event_rule)), 3),
                f"seed_rule_{key}": round(float(np.mean(seed_rule)), 3),
                "evidently_default": round(float(np.mean(evid)), 3) if evidently else "not installed",
                "driftloop_check_ms_median": round(1000 * statistics.median(secs), 1),
            }
    return out


# -- 2. streams with a change point -------------------------------------------------------------
def log_baseline_hours(
    client: driftloop.Client,
    conn: psycopg.Connection[Any],
    model: str,
    traffic: TopicTraffic,
    rng: np.random.Generator,
    per_minute: int,
) -> None:
    """Six hours of drift-free traffic from T0, set as the model's baseline."""
    add_model(conn, model)
    for h in range(6):
        times = spread_times(T0 + h * HOUR, HOUR, 60 * per_minute, rng)
        client.log_embeddings(model, traffic.sample(len(times), EMBEDDING_CASES[0], rng), created_at=times)
        client.log_interactions(interaction_rows(model, times, rng, **BASE_RATES))
    conn.execute("SELECT drift.compact_rollups()")
    conn.execute("SELECT count(*) FROM drift.set_baseline(%s, %s, %s)", (model, T0, T0 + 6 * HOUR))


def minute(
    client: driftloop.Client,
    model: str,
    traffic: TopicTraffic,
    case: EmbeddingCase,
    rates: dict[str, float],
    at: datetime,
    per_minute: int,
    rng: np.random.Generator,
) -> None:
    times = spread_times(at, MINUTE, per_minute, rng)
    client.log_embeddings(model, traffic.sample(per_minute, case, rng), created_at=times)
    client.log_interactions(interaction_rows(model, times, rng, **rates))


def seed_rule(rows: dict[str, dict[str, Any]], kind: str) -> bool:
    """The seed's fixed rules: centroid cosine > 0.15, rate > threshold, accuracy drop > threshold."""
    if kind == "embedding":
        return rows["centroid_distance"]["score"] is not None and rows["centroid_distance"]["score"] > 0.15
    return any(r["kind"] == kind and r["score"] is not None and r["score"] > r["threshold"] for r in rows.values())


def stream(
    url: str,
    name: str,
    kind: str,
    case: EmbeddingCase,
    rates: dict[str, float],
    seed: int,
    pre: int = 60,
    post: int = 60,
    per_minute: int = 100,
) -> dict[str, Any]:
    model = f"stream-{seed}-{name}"
    rng = np.random.default_rng(seed)
    traffic = TopicTraffic(384, seed)
    no_drift = EMBEDDING_CASES[0]
    with driftloop.connect(url) as client, connect(url, autocommit=True) as conn:
        log_baseline_hours(client, conn, model, traffic, rng, per_minute)
        change = T0 + 6 * HOUR + pre * MINUTE
        events: list[tuple[float, str, str]] = []
        seed_minutes: list[float] = []
        for m in range(pre + post):
            at = T0 + 6 * HOUR + m * MINUTE
            drifting = at >= change
            minute(
                client,
                model,
                traffic,
                case if drifting else no_drift,
                rates if drifting else BASE_RATES,
                at,
                per_minute,
                rng,
            )
            conn.execute("SELECT drift.compact_rollups()")
            since = (at + MINUTE - change) / MINUTE
            for k, metric in conn.execute(
                "SELECT kind, metric FROM drift.evaluate_models(%s, %s)", (at + MINUTE, [model])
            ).fetchall():
                events.append((since, k, metric))
            if seed_rule(report(conn, model, at + MINUTE), kind):
                seed_minutes.append(since)
            hit = [e for e in events if e[0] > 0 and e[1] == kind]
            if drifting and hit and any(s > 0 for s in seed_minutes):
                break
    hits = [e for e in events if e[0] > 0 and e[1] == kind]
    return {
        "driftloop_delay_minutes": hits[0][0] if hits else None,
        "driftloop_metrics": sorted({e[2] for e in hits}),
        "driftloop_false_events": len([e for e in events if e[0] <= 0 or e[1] != kind]),
        "seed_rule_delay_minutes": next((s for s in seed_minutes if s > 0), None),
        "seed_rule_false_alarm_minutes": len([s for s in seed_minutes if s <= 0]),
    }


def streams(
    url: str, name: str, kind: str, case: EmbeddingCase, rates: dict[str, float], seeds: list[int]
) -> dict[str, Any]:
    """The same change point in independent streams: every delay, and all false alarms."""
    runs = [stream(url, name, kind, case, rates, seed) for seed in seeds]
    return {
        "streams": len(runs),
        "driftloop_delays_minutes": [r["driftloop_delay_minutes"] for r in runs],
        "driftloop_metrics": sorted({m for r in runs for m in r["driftloop_metrics"]}),
        "driftloop_false_events": sum(r["driftloop_false_events"] for r in runs),
        "seed_rule_delays_minutes": [r["seed_rule_delay_minutes"] for r in runs],
        "seed_rule_false_alarm_minutes": sum(r["seed_rule_false_alarm_minutes"] for r in runs),
    }


STREAM_CASES: list[tuple[str, str, EmbeddingCase, dict[str, float]]] = [
    *[(c.name, "embedding", c, BASE_RATES) for c in EMBEDDING_CASES[1:]],
    ("refusal +2 points", "behavior", EMBEDDING_CASES[0], {**BASE_RATES, "refusal": 0.06}),
    ("refusal +5 points", "behavior", EMBEDDING_CASES[0], {**BASE_RATES, "refusal": 0.09}),
    ("toxicity +2 points", "behavior", EMBEDDING_CASES[0], {**BASE_RATES, "toxic": 0.03}),
    ("toxicity +5 points", "behavior", EMBEDDING_CASES[0], {**BASE_RATES, "toxic": 0.06}),
    ("accuracy -3 points", "accuracy", EMBEDDING_CASES[0], {**BASE_RATES, "accuracy": 0.87}),
    ("accuracy -5 points", "accuracy", EMBEDDING_CASES[0], {**BASE_RATES, "accuracy": 0.85}),
    ("accuracy -10 points", "accuracy", EMBEDDING_CASES[0], {**BASE_RATES, "accuracy": 0.80}),
]


# -- 3. drift-free evaluation every minute ------------------------------------------------------
def drift_free(url: str, hours: int, seed: int, per_minute: int = 100) -> dict[str, Any]:
    model = "drift-free"
    rng = np.random.default_rng(seed)
    traffic = TopicTraffic(384, seed)
    no_drift = EMBEDDING_CASES[0]
    p_values: dict[str, list[float]] = {}
    events = 0
    with driftloop.connect(url) as client, connect(url, autocommit=True) as conn:
        log_baseline_hours(client, conn, model, traffic, rng, per_minute)
        start = T0 + 6 * HOUR
        for m in range(hours * 60):
            at = start + m * MINUTE
            minute(client, model, traffic, no_drift, BASE_RATES, at, per_minute, rng)
            conn.execute("SELECT drift.compact_rollups()")
            raised = conn.execute("SELECT id FROM drift.evaluate_models(%s, %s)", (at + MINUTE, [model])).fetchall()
            events += len(raised)
            # A worker resolving every event at once: only the cooldown holds back a repeat.
            conn.execute("UPDATE drift.drift_events SET status = 'resolved' WHERE status = 'pending'")
            # Every window is full: the baseline's last hour precedes the stream.
            for metric, row in report(conn, model, at + MINUTE).items():
                p_values.setdefault(metric, []).append(row["p_value"])
        levels = {}
        for interval in ("1 hour", "6 hours", "1 day", "30 days"):
            conn.execute("UPDATE drift.settings SET value = %s WHERE key = 'false_alarm_interval'", (interval,))
            level = scalar(conn, "SELECT drift.look_alpha()")
            crossings = 0
            for series in p_values.values():
                below = np.array([p is not None and p < level for p in series])
                crossings += int(below[0]) + int(np.sum(below[1:] & ~below[:-1]))
            # What the level's derivation (drift.look_alpha) predicts for these looks: each
            # metric crosses min(level, 2 u phi(u) / window buckets) times per bucket.
            u = scalar(conn, "SELECT drift.normal_isf(%s)", (level,))
            per_look = min(level, 2 * u * math.exp(-u * u / 2) / math.sqrt(2 * math.pi) / 60)
            predicted = sum(len(series) for series in p_values.values()) * per_look
            levels[interval] = {
                "look_alpha": level,
                "predicted_false_events": round(predicted, 3),
                "observed_up_crossings": crossings,
            }
        conn.execute("UPDATE drift.settings SET value = '30 days' WHERE key = 'false_alarm_interval'")
    return {
        "simulated_hours_evaluated_every_minute": hours,
        "events_at_defaults": events,
        "by_false_alarm_interval": levels,
        "naive_minutes_below_alpha": {
            m: int(np.sum(np.array([p is not None and p < 0.01 for p in s]))) for m, s in p_values.items()
        },
    }


# -- 4. cost at reference 100,000 vs window 20,000 ----------------------------------------------
def naive_check(conn: psycopg.Connection[Any], model: str, base_end: datetime, as_of: datetime) -> None:
    """The same statistics from raw rows: what a tool reading the data out of Postgres does."""

    def rows(sql: str, *params: Any) -> np.ndarray:
        return np.stack([r[0].to_numpy() for r in conn.execute(sql, params)]).astype(np.float32)

    ref_m = rows("SELECT embedding FROM drift.embeddings_log WHERE model = %s AND created_at < %s", model, base_end)
    cur_m = rows(
        "SELECT embedding FROM drift.embeddings_log WHERE model = %s AND created_at >= %s AND created_at < %s",
        model,
        as_of - HOUR,
        as_of,
    )
    _ = float(np.sum((cur_m.mean(0) - ref_m.mean(0)) ** 2))
    sample = ref_m[:2000] / np.linalg.norm(ref_m[:2000], axis=1, keepdims=True)
    unit = cur_m / np.linalg.norm(cur_m, axis=1, keepdims=True)
    for i in range(0, len(unit), 5000):
        _ = (1 - unit[i : i + 5000] @ sample.T).min(axis=1)


def cost(url: str, reference: int, window: int, seed: int) -> dict[str, Any]:
    model = "cost"
    rng = np.random.default_rng(seed)
    traffic = TopicTraffic(384, seed)
    no_drift = EMBEDDING_CASES[0]
    with driftloop.connect(url) as client, connect(url, autocommit=True) as conn:
        add_model(conn, model)
        for i in range(0, reference, 20_000):
            n = min(20_000, reference - i)
            start = T0 + 24 * HOUR * i / reference
            client.log_embeddings(
                model,
                traffic.sample(n, no_drift, rng),
                created_at=spread_times(start, 24 * HOUR * n / reference, n, rng),
            )
        base_end = T0 + 24 * HOUR
        as_of = base_end + HOUR
        client.log_embeddings(
            model, traffic.sample(window, no_drift, rng), created_at=spread_times(base_end, HOUR, window, rng)
        )
        conn.execute("SELECT drift.compact_rollups()")
        conn.execute("VACUUM ANALYZE drift.embeddings_log")
        calibrate_s = median_time(
            1,
            warmup=False,
            fn=lambda: conn.execute(
                "SELECT count(*) FROM drift.set_baseline(%s, %s, %s, ARRAY['embedding'])", (model, T0, base_end)
            ),
        )
        query = "SELECT * FROM drift.embedding_report(%s, %s)"
        cold_s = median_time(1, warmup=False, fn=lambda: conn.execute(query, (as_of, [model])).fetchall())
        conn.execute("SELECT count(*) FROM drift.evaluate_models(%s, %s)", (as_of, [model]))  # caches novelty
        warm_s = median_time(5, warmup=False, fn=lambda: conn.execute(query, (as_of, [model])).fetchall())
        naive_s = median_time(3, warmup=False, fn=lambda: naive_check(conn, model, base_end, as_of))
        # Four times the history, all before the baseline: the check must not notice.
        for i in range(0, 3 * reference, 20_000):
            n = min(20_000, 3 * reference - i)
            client.log_embeddings(
                model, traffic.sample(n, no_drift, rng), created_at=spread_times(T0 - 72 * HOUR, 72 * HOUR, n, rng)
            )
        conn.execute("SELECT drift.compact_rollups()")
        conn.execute("VACUUM ANALYZE drift.embeddings_log")
        warm_big_s = median_time(5, warmup=False, fn=lambda: conn.execute(query, (as_of, [model])).fetchall())
    return {
        "reference": reference,
        "window": window,
        "dims": 384,
        "calibration_s": round(calibrate_s, 3),
        "cold_check_s": round(cold_s, 3),
        "warm_check_ms": round(1000 * warm_s, 2),
        "warm_check_ms_with_4x_history": round(1000 * warm_big_s, 2),
        "history_ratio": round(warm_big_s / warm_s, 3),
        "naive_raw_check_s": round(naive_s, 3),
        "naive_over_warm_ratio": round(naive_s / warm_s, 1),
        "naive_over_cold_ratio": round(naive_s / cold_s, 2),
        "evidently_default": "not installed" if evidently_check() is None else "see issue 5 (not re-measured here)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=50, help="windows per case (issue: 50)")
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 1536])
    parser.add_argument("--stream-seeds", type=int, default=3, help="streams per change-point case")
    parser.add_argument("--hours", type=int, default=72, help="simulated drift-free hours evaluated every minute")
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sections", nargs="+", default=["windows", "streams", "drift_free", "cost"])
    args = parser.parse_args()
    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "detection", "alpha": 0.01, "false_alarm_interval": "30 days"}
    sections: dict[str, Callable[[str], Any]] = {
        "windows": lambda url: {f"{d}d": windows(url, d, args.windows, args.seed + d) for d in args.dims},
        "streams": lambda url: {
            name: streams(url, name, kind, case, rates, [args.seed + 100 * s + i for s in range(args.stream_seeds)])
            for i, (name, kind, case, rates) in enumerate(STREAM_CASES)
        },
        "drift_free": lambda url: drift_free(url, args.hours, args.seed),
        "cost": lambda url: cost(url, args.reference, args.window, args.seed),
    }
    for name in args.sections:
        section_start = time.perf_counter()
        with fresh_database() as url:
            result[name] = sections[name](url)
        result.setdefault("section_wall_s", {})[name] = round(time.perf_counter() - section_start, 1)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    emit(result)


if __name__ == "__main__":
    main()
