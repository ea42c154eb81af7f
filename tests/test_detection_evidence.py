"""The sequential embedding test (metric mean_shift_evidence) on real text embeddings: evidence
accumulates bucket by bucket while a drift persists, exactly as the model the benchmark
replays for 30+ days computes it, and stays under its decision line without drift."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

import driftloop
from tests.support import detection_stream as ds
from tests.support.detection import (
    HOUR,
    MINUTE,
    REAL_RATE,
    T0,
    baseline_sample,
    log_real_hours,
    per_minute,
    set_baseline,
)
from tests.support.helpers import add_model
from tests.support.real_embeddings import REAL_CASES, Corpus, RealCase, TopicSampler, ada_like, load_slice

RATE = REAL_RATE
NEW_TOPIC_20 = next(c for c in REAL_CASES if c.name == "new topic 20%")


def evidence_rows(conn: psycopg.Connection[Any], model: str) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute("SELECT * FROM drift.embedding_evidence WHERE model = %s ORDER BY bucket", (model,)).fetchall()


def evidence_report(conn: psycopg.Connection[Any], model: str, as_of: datetime) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    row = cur.execute("SELECT * FROM drift.drift_report(%s, %s) WHERE metric = 'mean_shift_evidence'",
                      (as_of, [model])).fetchone()
    assert row is not None
    return row


@pytest.mark.parametrize("dims", [256, 1536])
def test_sql_folds_each_bucket_once_as_the_replayed_model_does(
    db_url: str, conn: psycopg.Connection[Any], dims: int
) -> None:
    """Evaluated at two times, drift.embedding_evidence holds the statistic the numpy model of
    the benchmark computes from the same rows and the same baseline sample; at 1536-d (ada-002's
    geometry) through the 256 landmarks the SQL orthonormalizes."""
    rng = np.random.default_rng(3)
    corpus = load_slice()
    if dims != 256:
        corpus = Corpus(ada_like(corpus.vectors, dims), corpus.sections)
    sampler = TopicSampler(corpus, rng, topics=8)
    model = f"evidence-agree-{dims}"
    add_model(conn, model)
    start = T0 + 24 * HOUR
    with driftloop.connect(db_url) as client:
        ref, _ = log_real_hours(client, model, sampler, RealCase("baseline"), T0, 24, rng)
        set_baseline(conn, model, T0, start)
        x, times = log_real_hours(client, model, sampler, NEW_TOPIC_20, start, 3, rng)
    # Half way, then at the end: the second evaluation folds only the buckets after the first.
    n, sums = per_minute(x, times, start, 180)
    busy = [start + i * MINUTE for i in np.flatnonzero(n)]  # a minute without rows has no rollup
    conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (start + 90 * MINUTE,))
    assert [r["bucket"] for r in evidence_rows(conn, model)] == [b for b in busy if b < start + 90 * MINUTE]
    conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (start + 3 * HOUR,))
    rows = evidence_rows(conn, model)
    assert [r["bucket"] for r in rows] == busy

    sample = baseline_sample(conn, model)
    expected, _ = ds.evidence(n, sums, ds.EvidenceBaseline.of(ref.astype(np.float64), sample))
    got = np.array([(r["statistic"], r["run_n"]) for r in rows])
    assert got[:, 0].max() > 0
    np.testing.assert_allclose(got, expected[np.flatnonzero(n), :2], rtol=1e-3, atol=1e-3)
    assert [r["n"] for r in rows] == n[n > 0].astype(int).tolist()


def test_a_pause_longer_than_the_direction_window_empties_it(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """The fold keeps its direction window as running sums: buckets leave it as time moves on,
    however sparse. After 90 quiet minutes nothing is left, so the buckets after the pause
    have no direction (z NULL) until min_samples have arrived again, and the
    statistic still agrees with the numpy model bucket by bucket."""
    rng = np.random.default_rng(8)
    sampler = TopicSampler(load_slice(), rng, topics=8)
    model = "evidence-pause"
    add_model(conn, model)
    start = T0 + 24 * HOUR
    resume = start + 150 * MINUTE
    with driftloop.connect(db_url) as client:
        ref, _ = log_real_hours(client, model, sampler, RealCase("baseline"), T0, 24, rng)
        set_baseline(conn, model, T0, start)
        x1, t1 = log_real_hours(client, model, sampler, NEW_TOPIC_20, start, 1, rng)
        x2, t2 = log_real_hours(client, model, sampler, NEW_TOPIC_20, resume, 1.5, rng)
    # The second evaluation starts from the window of the first hour, which all leaves at once.
    conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (start + 2 * HOUR,))
    conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (start + 4 * HOUR,))
    n, sums = per_minute(np.vstack([x1, x2]), t1 + t2, start, 240)
    rows = evidence_rows(conn, model)
    assert [r["bucket"] for r in rows] == [start + i * MINUTE for i in np.flatnonzero(n)]
    after = [r for r in rows if r["bucket"] >= resume]
    # Until the refilled window holds min_samples (100 rows, 20 minutes at 300 an hour).
    directionless = [r["bucket"] for r in after if r["z"] is None]
    assert directionless and max(directionless) < resume + 25 * MINUTE
    assert all(r["z"] is not None for r in after if r["bucket"] >= resume + 25 * MINUTE)

    sample = baseline_sample(conn, model)
    expected, _ = ds.evidence(n, sums, ds.EvidenceBaseline.of(ref.astype(np.float64), sample))
    got = np.array([(r["statistic"], r["run_n"]) for r in rows])
    assert got[:, 0].max() > 0
    np.testing.assert_allclose(got, expected[np.flatnonzero(n), :2], rtol=1e-3, atol=1e-3)


def test_a_persistent_new_topic_raises_one_evidence_event_and_drift_free_traffic_none(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    """Two models fed the same way, evaluated every 10 minutes: 3 quiet hours, then 3 hours in
    which a topic the baseline never saw takes 20% of the traffic (or nothing changes)."""
    rng = np.random.default_rng(11)
    models = {"evidence-drift": NEW_TOPIC_20, "evidence-quiet": RealCase("none")}
    start = T0 + 24 * HOUR
    change = start + 3 * HOUR
    with driftloop.connect(db_url) as client:
        for model, case in models.items():
            sampler = TopicSampler(load_slice(), np.random.default_rng(5), topics=8)
            add_model(conn, model)
            log_real_hours(client, model, sampler, RealCase("baseline"), T0, 24, rng)
            set_baseline(conn, model, T0, start)
            log_real_hours(client, model, sampler, RealCase("none"), start, 3, rng)
            log_real_hours(client, model, sampler, case, change, 3, rng)
    events: list[dict[str, Any]] = []
    cur = conn.cursor(row_factory=dict_row)
    for step in range(1, 37):
        events += cur.execute("SELECT * FROM drift.evaluate(%s) WHERE kind = 'embedding'",
                              (start + step * 10 * MINUTE,)).fetchall()
    end = start + 6 * HOUR
    quiet = evidence_report(conn, "evidence-quiet", end)
    assert quiet["threshold"] is not None and not quiet["drifted"]
    # The decision line is the formula of the benchmark, at the baseline's rate.
    assert abs(quiet["threshold"] - ds.evidence_threshold(RATE)) < 0.05
    assert not [e for e in events if e["model"] == "evidence-quiet"]

    drifted = evidence_report(conn, "evidence-drift", end)
    assert drifted["drifted"] and drifted["score"] > drifted["threshold"]
    assert drifted["p_value"] < 1e-3
    raised = [e for e in events if e["model"] == "evidence-drift" and e["metric"] == "mean_shift_evidence"]
    assert len(raised) == 1, raised  # one event while the drift persists
    event = raised[0]
    # Raised after the change, never in the quiet hours, on the current window like every row;
    # its run of evidence began after the baseline, at the latest soon after the change (a
    # CUSUM's run may start a little before it).
    assert event["window_end"] - event["window_start"] == HOUR and change < event["window_end"] <= end
    assert start < datetime.fromisoformat(event["details"]["since"]) < change + 30 * MINUTE
    assert event["score"] > event["threshold"] == drifted["threshold"]


def test_moving_the_baseline_starts_the_evidence_again(db_url: str, conn: psycopg.Connection[Any]) -> None:
    rng = np.random.default_rng(4)
    sampler = TopicSampler(load_slice(), rng, topics=8)
    model = "evidence-reset"
    add_model(conn, model)
    start = T0 + 24 * HOUR
    with driftloop.connect(db_url) as client:
        log_real_hours(client, model, sampler, RealCase("baseline"), T0, 24, rng)
        set_baseline(conn, model, T0, start)
        log_real_hours(client, model, sampler, NEW_TOPIC_20, start, 2, rng)
    conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (start + 2 * HOUR,))
    assert evidence_rows(conn, model)
    set_baseline(conn, model, start, start + 2 * HOUR)
    assert evidence_rows(conn, model) == []
    row = evidence_report(conn, model, start + 2 * HOUR)
    assert row["score"] is None and row["threshold"] is None and not row["drifted"]


def test_drift_free_replay_of_the_model_stays_under_the_decision_lines() -> None:
    """The shorter replay (the benchmark runs 30+ days at 256-d and 1536-d): five drift-free
    days of real-embedding traffic, evaluated every minute, at 300 embeddings an hour. The
    sequential test's line allows about one false event per 120 days, so five days cross it
    with probability near 4%; this seed does not, and a broken correction (the estimated
    baseline mean) crosses it within hours. The whitened three-hour test, on the same minutes,
    stays above look_alpha of its window."""
    corpus = load_slice()
    rng = np.random.default_rng(0)
    sampler = TopicSampler(corpus, rng, topics=8)
    _, _, (ev,), white = ds.simulate(sampler, RealCase("none"), rate_per_hour=RATE, baseline_hours=24,
                                     hours=5 * 24, rng=rng, lengths=(60,))
    threshold = ds.evidence_threshold(RATE)
    assert ds.crossings(ds.evidence_alarm(ev, threshold)) == 0, ev[:, 0].max()
    # The statistic does move: drift-free traffic builds and loses evidence all the time.
    assert ev[:, 0].max() > 1 and np.mean(ev[:, 0] == 0) > 0.2
    assert ds.crossings(white[:, 0] < np.log(ds.look_alpha(180))) == 0, white[:, 0].min()
    # Its p-value moves too: without drift it spans the unit interval.
    p = np.exp(white[white[:, 0] < 0, 0])
    assert p.min() < 0.01 and np.median(p) > 0.2


def test_the_one_window_whitened_p_is_the_per_minute_model_on_that_window() -> None:
    """The benchmark's one-look whitened test and the stream model share one null: the window
    of all rows gives the same p either way."""
    rng = np.random.default_rng(3)
    sampler = TopicSampler(load_slice(), rng, topics=8)
    base = ds.EvidenceBaseline.of(sampler.draw(1000, RealCase("baseline")))
    cur = sampler.draw(300, NEW_TOPIC_20)
    n, sums = np.array([100.0, 200.0]), np.vstack([cur[:100].sum(0), cur[100:].sum(0)])
    logp = ds.whitened_logp(n, sums, base, length=2)[-1]
    assert logp < np.log(0.05)
    assert np.isclose(ds.whitened_window_p(base, cur), np.exp(logp), rtol=1e-9)


def test_old_evidence_is_thinned_to_the_last_value_of_each_hour(db_url: str, conn: psycopg.Connection[Any]) -> None:
    rng = np.random.default_rng(6)
    sampler = TopicSampler(load_slice(), rng, topics=8)
    model = "evidence-thin"
    add_model(conn, model)
    start = T0 + 24 * HOUR
    with driftloop.connect(db_url) as client:
        log_real_hours(client, model, sampler, RealCase("baseline"), T0, 24, rng)
        set_baseline(conn, model, T0, start)
        log_real_hours(client, model, sampler, NEW_TOPIC_20, start, 3, rng)
    conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (start + 2 * HOUR,))
    before = evidence_rows(conn, model)
    conn.execute("SELECT drift.compact_rollups_hourly(interval '1 second')")
    after = evidence_rows(conn, model)
    last_of_hour = {r["bucket"].replace(minute=0): r for r in before}  # rows are in time order
    assert after == sorted(last_of_hour.values(), key=lambda r: r["bucket"])
    # The next fold continues from the latest row, which was kept.
    conn.execute("SELECT count(*) FROM drift.evaluate(%s)", (start + 3 * HOUR,))
    assert evidence_rows(conn, model)[len(after)]["bucket"] > before[-1]["bucket"]
