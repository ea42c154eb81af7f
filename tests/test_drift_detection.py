"""Each drift kind end to end: data logged through the SDK, drift.evaluate(as_of), drift_events.

Simulated time: traffic is logged at fixed timestamps in the past and evaluated with
drift.evaluate(as_of), with trigger evaluation off (evaluate_interval 0) so only the test
moves the evaluation clock. The last tests use the wall clock to check the log triggers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

import driftloop

MODEL = "support-bot"
DIMS = 16
PER_HOUR = 200
T0 = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
BASELINE = (T0, T0 + HOUR)
CALM_AS_OF = T0 + 3 * HOUR  # current window [T0+2h, T0+3h): traffic like the baseline
DRIFT_FROM = T0 + 4 * HOUR  # drifted traffic for three hours
DRIFT_AS_OF = T0 + 5 * HOUR

NORMAL = {"refusal": 0.02, "toxic": 0.01, "accuracy": 0.90, "topic": 0}
# Drifted traffic per drift kind, and the metrics it must (alone) raise events for. A topic
# shift moves the centroid and the share of queries unlike any baseline query, and, as it
# persists, builds evidence bucket after bucket.
SCENARIOS: dict[str, tuple[dict[str, Any], set[tuple[str, str]]]] = {
    "embedding": ({"topic": 1}, {("embedding", "centroid_distance"), ("embedding", "novelty_rate"),
                                 ("embedding", "mean_shift_evidence"), ("embedding", "whitened_mean_shift")}),
    "refusal": ({"refusal": 0.30}, {("behavior", "refusal_rate")}),
    "toxicity": ({"toxic": 0.20}, {("behavior", "toxicity_rate")}),
    "accuracy": ({"accuracy": 0.60}, {("accuracy", "accuracy")}),
}
ALL_METRICS = {metric for _, metrics in SCENARIOS.values() for metric in metrics}
EVIDENCE = ("embedding", "mean_shift_evidence")
EVERYTHING_DRIFTS = {k: v for profile, _ in SCENARIOS.values() for k, v in profile.items()}
REFUSAL_TEXT = "I'm sorry, but I can't help with that."
ANSWER_TEXT = "Here is how to reset your password."


def times(start: datetime, span: timedelta, per_hour: int = PER_HOUR) -> list[datetime]:
    count = int(span / HOUR * per_hour)
    return [start + timedelta(seconds=3600 * i / per_hour) for i in range(count)]


def share(i: int, rate: float) -> bool:
    """Exactly `rate` of every 100 consecutive rows."""
    return (i * 37) % 100 < round(rate * 100)


def traffic(
    stamps: list[datetime],
    profile: dict[str, Any],
    *,
    model: str = MODEL,
    send_is_refusal: bool = True,
    labelled: bool = True,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Interactions (with their query embeddings) whose rates follow the profile exactly."""
    rates = {**NORMAL, **profile}
    rng = np.random.default_rng(seed)
    centre = np.zeros(DIMS)
    centre[rates["topic"]] = 3.0  # another topic: the query embeddings move to another axis
    rows = []
    for i, at in enumerate(stamps):
        refused = share(i, rates["refusal"])
        row: dict[str, Any] = {
            "model": model,
            "created_at": at,
            "prompt": f"question {i}",
            "response": REFUSAL_TEXT if refused else ANSWER_TEXT,
            "toxicity": 0.9 if share(i + 11, rates["toxic"]) else 0.05,
            "correct": share(i + 23, rates["accuracy"]) if labelled else None,
            "latency_ms": 120.0,
            "embedding": centre + rng.standard_normal(DIMS),
        }
        if send_is_refusal:
            row["is_refusal"] = refused
        rows.append(row)
    return rows


@pytest.fixture
def dl(db_url: str, conn: psycopg.Connection[Any]) -> Iterator[driftloop.Client]:
    # Simulated time: only the test evaluates (the triggers would evaluate at the wall clock).
    conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
    with driftloop.connect(db_url) as client:
        yield client


def report(conn: psycopg.Connection[Any], as_of: datetime, model: str = MODEL) -> dict[tuple[str, str], dict]:
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute("SELECT * FROM drift.drift_report(%s) WHERE model = %s", (as_of, model)).fetchall()
    return {(r["kind"], r["metric"]): r for r in rows}


def events(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute("SELECT * FROM drift.drift_events ORDER BY id").fetchall()


def log_scenario(dl: driftloop.Client, drift: dict[str, Any]) -> None:
    dl.log_interactions(traffic(times(T0, HOUR), NORMAL, seed=1))
    dl.log_interactions(traffic(times(CALM_AS_OF - HOUR, HOUR), NORMAL, seed=2))
    dl.log_interactions(traffic(times(DRIFT_FROM, 3 * HOUR), drift, seed=3))
    dl.set_baseline(MODEL, *BASELINE)


def kinds(raised: list[dict[str, Any]]) -> set[tuple[str, str]]:
    pairs = [(e["kind"], e["metric"]) for e in raised]
    assert len(pairs) == len(set(pairs)), pairs  # never two events for one metric
    return set(pairs)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_drift_raises_one_event_and_open_events_and_cooldown_suppress_more(
    dl: driftloop.Client, conn: psycopg.Connection[Any], scenario: str
) -> None:
    profile, expected = SCENARIOS[scenario]
    log_scenario(dl, profile)

    # Drift-free data: every metric computed, none drifted, no event.
    calm = report(conn, CALM_AS_OF)
    assert set(calm) == ALL_METRICS
    assert [k for k, r in calm.items() if r["drifted"]] == []
    assert all(r["n_current"] == PER_HOUR and r["n_baseline"] == PER_HOUR for r in calm.values())
    assert dl.evaluate(CALM_AS_OF) == []

    # Drifted data: one event per drifted metric, of the right kind, with what it was based on.
    raised = dl.evaluate(DRIFT_AS_OF)
    assert kinds(raised) == expected
    for event in raised:
        assert event["model"] == MODEL and event["status"] == "pending"
        assert event["p_value"] < 0.01 and event["score"] > event["threshold"]
        assert (event["window_start"], event["window_end"]) == (DRIFT_AS_OF - HOUR, DRIFT_AS_OF)
        assert event["details"]["n_current"] == PER_HOUR and event["details"]["n_baseline"] == PER_HOUR
    assert sorted(e["id"] for e in events(conn)) == sorted(e["id"] for e in raised)
    drifted = report(conn, DRIFT_AS_OF)
    assert {k for k, r in drifted.items() if r["drifted"]} == expected

    # Still drifted, but an open (pending or running) event suppresses duplicates.
    assert dl.evaluate(DRIFT_AS_OF + MINUTE) == []
    conn.execute("UPDATE drift.drift_events SET status = 'running'")
    assert dl.evaluate(DRIFT_AS_OF + 2 * MINUTE) == []

    # Resolved at evaluation time DRIFT_AS_OF + 2 min; the cooldown (1 hour) counts from there.
    conn.execute("UPDATE drift.drift_events SET status = 'resolved'")
    for closed in events(conn):
        assert closed["closed_as_of"] == DRIFT_AS_OF + 2 * MINUTE and closed["closed_at"] is not None
    assert dl.evaluate(DRIFT_AS_OF + 30 * MINUTE) == []
    assert dl.evaluate(DRIFT_AS_OF + 61 * MINUTE) == []
    again = dl.evaluate(DRIFT_AS_OF + 63 * MINUTE)
    assert kinds(again) == expected
    assert len(events(conn)) == 2 * len(expected)


def test_too_little_data_reports_not_drifted_with_its_counts(
    dl: driftloop.Client, conn: psycopg.Connection[Any]
) -> None:
    dl.log_interactions(traffic(times(T0, HOUR), NORMAL, seed=1))
    dl.set_baseline(MODEL, *BASELINE)
    # 90 rows in the current window: below min_samples (100), however drifted they are.
    dl.log_interactions(traffic(times(DRIFT_FROM, 0.45 * HOUR), EVERYTHING_DRIFTS, seed=2))
    few = report(conn, DRIFT_AS_OF)
    assert set(few) == ALL_METRICS
    for key, row in few.items():
        assert (row["drifted"], row["n_current"], row["n_baseline"]) == (False, 90, PER_HOUR)
        # Computed, just not enough to call it drift (the sequential test folds nothing
        # until an evaluation runs).
        assert row["score"] is not None or key == EVIDENCE
    assert dl.evaluate(DRIFT_AS_OF) == []
    # 90 rows are too few for the sequential test to know a direction: no evidence at all.
    assert report(conn, DRIFT_AS_OF)[EVIDENCE]["score"] == 0

    # 30 more rows in the same window: now every metric has enough data and drifts (the
    # sequential test needs a few buckets past min_samples to pass its line).
    dl.log_interactions(traffic(times(DRIFT_FROM + 0.5 * HOUR, 0.15 * HOUR), EVERYTHING_DRIFTS, seed=3))
    enough = report(conn, DRIFT_AS_OF)
    windows = {k: (r["drifted"], r["n_current"]) for k, r in enough.items() if k != EVIDENCE}
    assert windows == {k: (True, 120) for k in ALL_METRICS - {EVIDENCE}}
    assert kinds(dl.evaluate(DRIFT_AS_OF)) == ALL_METRICS


def test_metrics_with_no_data_in_the_window_report_zero_counts(
    dl: driftloop.Client, conn: psycopg.Connection[Any]
) -> None:
    """Common, not exotic: no toxicity scores, no labels yet, no embeddings this hour."""
    baseline = [{"model": MODEL, "created_at": at, "response": ANSWER_TEXT, "embedding": np.eye(DIMS)[i % DIMS]}
                for i, at in enumerate(times(T0, HOUR))]  # fmt: skip
    dl.log_interactions(baseline)
    dl.log_interactions([{"model": MODEL, "created_at": at, "response": ANSWER_TEXT} for at in times(DRIFT_FROM, HOUR)])
    dl.set_baseline(MODEL, *BASELINE)
    rows = report(conn, DRIFT_AS_OF)
    assert {k: (r["n_current"], r["drifted"]) for k, r in rows.items()} == {
        ("embedding", "centroid_distance"): (0, False),
        ("embedding", "novelty_rate"): (0, False),
        EVIDENCE: (0, False),
        ("embedding", "whitened_mean_shift"): (0, False),
        ("behavior", "refusal_rate"): (PER_HOUR, False),
        ("behavior", "toxicity_rate"): (0, False),
        ("accuracy", "accuracy"): (0, False),
    }
    assert dl.evaluate(DRIFT_AS_OF) == []
    assert len(dl.status()) == 7  # the views at now(): nothing logged in this window at all


def test_first_data_becomes_the_baseline_automatically(dl: driftloop.Client, conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE drift.settings SET value = '2 hours' WHERE key = 'auto_baseline'")
    dl.log_interactions(traffic(times(T0, 2 * HOUR), NORMAL, seed=1))
    dl.log_interactions(traffic(times(T0 + 2 * HOUR, HOUR), NORMAL, seed=2))
    dl.log_interactions(traffic(times(T0 + 3 * HOUR, HOUR), SCENARIOS["accuracy"][0], seed=3))

    # Not yet: the two hours of baseline must lie wholly before the current window.
    assert dl.evaluate(T0 + 2 * HOUR + 30 * MINUTE) == []
    assert conn.execute("SELECT count(*) FROM drift.baselines").fetchone() == (0,)

    assert dl.evaluate(T0 + 3 * HOUR) == []
    baselines = conn.execute("SELECT kind, source, starts, ends, n FROM drift.baselines ORDER BY kind").fetchall()
    assert baselines == [
        (kind, "auto", T0, T0 + 2 * HOUR, 2 * PER_HOUR) for kind in ("accuracy", "behavior", "embedding")
    ]

    assert kinds(dl.evaluate(T0 + 4 * HOUR)) == {("accuracy", "accuracy")}
    # A baseline set by hand is never replaced by an automatic one.
    dl.set_baseline(MODEL, T0 + 3 * HOUR, T0 + 4 * HOUR)
    dl.evaluate(T0 + 4 * HOUR + MINUTE)
    assert conn.execute("SELECT DISTINCT source FROM drift.baselines").fetchall() == [("manual",)]


def test_behavior_without_a_baseline_is_judged_by_the_absolute_thresholds(
    dl: driftloop.Client, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'auto_baseline'")
    dl.log_interactions(traffic(times(CALM_AS_OF - HOUR, HOUR), NORMAL, seed=1))
    dl.log_interactions(traffic(times(DRIFT_FROM, HOUR), {"refusal": 0.30, "toxic": 0.20}, seed=2))
    calm = report(conn, CALM_AS_OF)
    assert calm[("behavior", "refusal_rate")]["n_baseline"] == 0
    assert [k for k, r in calm.items() if r["drifted"]] == []
    assert dl.evaluate(CALM_AS_OF) == []
    # Without a baseline nothing to compare embeddings or accuracy with; the seed's rate thresholds still apply.
    assert kinds(dl.evaluate(DRIFT_AS_OF)) == {("behavior", "refusal_rate"), ("behavior", "toxicity_rate")}


def test_refusals_are_filled_from_patterns_when_the_app_sends_none(
    dl: driftloop.Client, conn: psycopg.Connection[Any]
) -> None:
    at = T0 + 10 * HOUR
    ids = dl.log_interactions(
        [
            {"model": "m", "created_at": at, "response": REFUSAL_TEXT},
            {"model": "m", "created_at": at, "response": "I cannot assist with that request."},
            {"model": "m", "created_at": at, "response": ANSWER_TEXT},
            {"model": "m", "created_at": at, "response": REFUSAL_TEXT, "is_refusal": False},  # the app wins
            {"model": "m", "created_at": at, "response": ANSWER_TEXT, "is_refusal": True},
            {"model": "m", "created_at": at, "prompt": "no response logged"},
            {"model": "m", "created_at": at, "response": "Nope, not doing that."},
        ]
    )
    stored = dict(
        conn.execute("SELECT id, is_refusal FROM drift.interaction_log WHERE id = ANY(%s)", (ids,)).fetchall()
    )
    assert [stored[i] for i in ids] == [True, True, False, False, True, None, False]

    # A pattern the user adds applies to rows logged from then on.
    conn.execute(r"INSERT INTO drift.refusal_patterns (pattern, description) VALUES ('^nope\M', 'our bot''s style')")
    later = dl.log_interactions([{"model": "m", "created_at": at, "response": "Nope, not doing that."}])
    assert conn.execute("SELECT is_refusal FROM drift.interaction_log WHERE id = %s", later).fetchone() == (True,)
    conn.execute("UPDATE drift.refusal_patterns SET enabled = false")
    off = dl.log_interactions([{"model": "m", "created_at": at, "response": REFUSAL_TEXT}])
    assert conn.execute("SELECT is_refusal FROM drift.interaction_log WHERE id = %s", off).fetchone() == (False,)

    window = conn.execute(
        "SELECT interactions, refusal_known, refusals FROM drift.interaction_window('m', %s, %s)", (at, at + MINUTE)
    ).fetchone()
    assert window == (9, 8, 4)


def test_refusal_drift_from_pattern_filled_rows(dl: driftloop.Client, conn: psycopg.Connection[Any]) -> None:
    def log(start: datetime, span: timedelta, profile: dict[str, Any], seed: int) -> None:
        dl.log_interactions(traffic(times(start, span), profile, send_is_refusal=False, seed=seed))

    log(T0, HOUR, NORMAL, 1)
    log(CALM_AS_OF - HOUR, HOUR, NORMAL, 2)
    log(DRIFT_FROM, HOUR, {"refusal": 0.30}, 3)
    dl.set_baseline(MODEL, *BASELINE)
    assert dl.evaluate(CALM_AS_OF) == []
    raised = dl.evaluate(DRIFT_AS_OF)
    assert [(e["kind"], e["metric"]) for e in raised] == [("behavior", "refusal_rate")]
    assert raised[0]["details"]["value"] == pytest.approx(0.30)


def test_new_events_are_notified_on_channel_drift_events(
    db_url: str, dl: driftloop.Client, conn: psycopg.Connection[Any]
) -> None:
    dl.log_interactions(traffic(times(T0, HOUR), NORMAL, seed=1))
    dl.log_interactions(traffic(times(DRIFT_FROM, HOUR), EVERYTHING_DRIFTS, seed=2))
    dl.set_baseline(MODEL, *BASELINE)
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN drift_events")
        raised = dl.evaluate(DRIFT_AS_OF)
        assert kinds(raised) == ALL_METRICS
        got = list(listener.notifies(timeout=10, stop_after=len(raised)))
    assert sorted((n.channel, n.payload) for n in got) == sorted(("drift_events", str(e["id"])) for e in raised)


def test_late_labels_count_in_the_window_of_the_interaction(
    dl: driftloop.Client, conn: psycopg.Connection[Any]
) -> None:
    dl.log_interactions(traffic(times(T0, HOUR), NORMAL, seed=1))
    ids = dl.log_interactions(traffic(times(DRIFT_FROM, HOUR), NORMAL, labelled=False, seed=2))
    dl.set_baseline(MODEL, *BASELINE)
    before = report(conn, DRIFT_AS_OF)[("accuracy", "accuracy")]
    assert (before["n_current"], before["drifted"]) == (0, False)
    assert dl.evaluate(DRIFT_AS_OF) == []

    # Labels arrive (much) later: 60% correct. Half as labels, the other half as feedback only.
    half = len(ids) // 2
    with conn.transaction():
        for i, interaction_id in enumerate(ids):
            column = "correct" if i < half else "feedback"
            value: Any = share(i, 0.60) if i < half else (1 if share(i, 0.60) else -1)
            conn.execute(f"UPDATE drift.interaction_log SET {column} = %s WHERE id = %s", (value, interaction_id))
    stamped = conn.execute("SELECT count(labelled_at) FROM drift.interaction_log WHERE id = ANY(%s)", (ids,)).fetchone()
    assert stamped == (len(ids),)
    after = report(conn, DRIFT_AS_OF)[("accuracy", "accuracy")]
    assert after["n_current"] == PER_HOUR and after["value"] == pytest.approx(0.60, abs=0.02)
    assert after["details"]["labelled_current"] == half
    raised = dl.evaluate(DRIFT_AS_OF + MINUTE)
    assert [(e["kind"], e["metric"]) for e in raised] == [("accuracy", "accuracy")]
    # The labels arrived now, but count nowhere near now.
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    assert report(conn, now[0])[("accuracy", "accuracy")]["n_current"] == 0


def test_concurrent_evaluations_raise_one_event(
    db_url: str, dl: driftloop.Client, conn: psycopg.Connection[Any]
) -> None:
    import threading

    log_scenario(dl, SCENARIOS["refusal"][0])
    barrier = threading.Barrier(3)
    results: list[list[Any]] = []

    def evaluate() -> None:
        with psycopg.connect(db_url, autocommit=True) as own:
            barrier.wait()
            results.append(own.execute("SELECT id FROM drift.evaluate(%s)", (DRIFT_AS_OF,)).fetchall())

    threads = [threading.Thread(target=evaluate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    assert sum(len(r) for r in results) == 1
    assert len(events(conn)) == 1


def test_log_triggers_evaluate_at_most_once_per_interval(dl: driftloop.Client, conn: psycopg.Connection[Any]) -> None:
    """Wall-clock time: the log triggers evaluate a model when its evaluate_interval has passed."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now = row[0]
    dl.log_interactions(traffic(times(now - 3 * HOUR, HOUR), NORMAL, seed=1))
    dl.log_interactions(traffic(times(now - 55 * MINUTE, 50 * MINUTE), {"refusal": 0.30}, seed=2))
    dl.set_baseline(MODEL, now - 3 * HOUR, now - 2 * HOUR)
    dl.log_interactions(traffic(times(now - HOUR, 10 * MINUTE), NORMAL, model="replay", seed=3))
    conn.execute("UPDATE drift.models SET auto_evaluate = false WHERE model = 'replay'")

    def model_clock(model: str) -> tuple[Any, Any]:
        found = conn.execute(
            # next_evaluation_at is '-infinity' until the triggers first evaluate the model.
            "SELECT CASE WHEN isfinite(next_evaluation_at) THEN next_evaluation_at END, last_evaluated_as_of"
            " FROM drift.models WHERE model = %s",
            (model,),
        ).fetchone()
        assert found is not None
        return found[0], found[1]

    assert model_clock(MODEL) == (None, None)  # with evaluate_interval 0 nothing evaluated yet
    assert events(conn) == []

    conn.execute("UPDATE drift.settings SET value = '1 hour' WHERE key = 'evaluate_interval'")

    def log_one(model: str) -> None:
        dl.log_interactions([{"model": model, "response": ANSWER_TEXT, "is_refusal": False}])

    started = conn.execute("SELECT clock_timestamp()").fetchone()
    assert started is not None
    log_one(MODEL)  # due: this insert evaluates, at now()
    first_next, first_as_of = model_clock(MODEL)
    assert first_next > started[0] + 59 * MINUTE and first_as_of >= started[0]
    raised = events(conn)
    assert [(e["kind"], e["metric"]) for e in raised] == [("behavior", "refusal_rate")]
    # Raised by the trigger's evaluation at the inserting transaction's now(), not at simulated time.
    evaluated_at = datetime.fromisoformat(raised[0]["details"]["as_of"])
    assert started[0] <= evaluated_at == first_as_of and raised[0]["created_at"] >= started[0]
    assert raised[0]["window_end"] == evaluated_at.replace(second=0, microsecond=0)

    for _ in range(40):  # a burst: not one of these evaluates again
        log_one(MODEL)
        log_one("replay")
    assert model_clock(MODEL) == (first_next, first_as_of)
    assert model_clock("replay") == (None, None)  # auto_evaluate = false: the triggers never evaluate it

    # Once the interval has passed, the next insert evaluates again (and only it).
    conn.execute("UPDATE drift.models SET next_evaluation_at = now() - interval '1 second' WHERE model = %s", (MODEL,))
    log_one(MODEL)
    second_next, second_as_of = model_clock(MODEL)
    assert second_next > first_next and second_as_of > first_as_of
    log_one(MODEL)
    assert model_clock(MODEL) == (second_next, second_as_of)
    assert len(events(conn)) == 1  # the open event still suppresses a duplicate
