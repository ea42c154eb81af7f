"""The rollups the triggers keep equal a direct computation over the raw log rows.

Whatever the writes look like — SDK batches (binary COPY), many single-row statements in one
transaction, multi-row INSERTs, rolled-back savepoints and transactions, late label UPDATEs,
concurrent writers — the rollups plus their pending deltas, and after drift.compact_rollups()
the rollups alone, must hold exactly what aggregating the raw rows gives.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import driftloop
from driftloop.database import connect

BASE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DIMS = {"alpha": 3, "beta": 5, "gamma": 2}
RESPONSES = [
    None,
    "Sure, here is the answer.",
    "I'm sorry, but I can't help with that.",
    "I cannot assist with this request.",
]
COUNT_COLUMNS = (
    "interactions", "refusal_known", "refusals", "toxicity_scored", "toxic", "feedback_given",
    "feedback_positive", "labelled", "correct", "quality_n", "quality_ok", "latency_n",
)  # fmt: skip
SUM_COLUMNS = ("toxicity_sum", "latency_sum")

# The definition of each interaction count, written independently of the triggers' SQL.
RAW_INTERACTION_AGGREGATES = """
    count(*), count(is_refusal), count(*) FILTER (WHERE is_refusal), count(toxicity),
    count(*) FILTER (WHERE toxicity >= drift.setting('toxic_at')::real),
    count(*) FILTER (WHERE feedback <> 0), count(*) FILTER (WHERE feedback = 1),
    count(correct), count(*) FILTER (WHERE correct),
    count(*) FILTER (WHERE correct IS NOT NULL OR feedback <> 0),
    count(*) FILTER (WHERE coalesce(correct, feedback = 1)),
    count(latency_ms),
    coalesce(sum(toxicity::float8), 0), coalesce(sum(latency_ms::float8), 0)
"""
BUCKET = "date_bin(interval '1 minute', created_at, timestamptz '2000-01-01 00:00:00+00')"

Key = tuple[str, datetime]


# -- strategies ------------------------------------------------------------------------------
times = st.builds(
    lambda minute, second, micro: BASE + timedelta(minutes=minute, seconds=second, microseconds=micro),
    st.integers(0, 9),
    st.integers(0, 59),
    st.sampled_from([0, 0, 1, 999_999]),  # bucket boundaries exactly, and just after/before
)
interaction = st.fixed_dictionaries(
    {
        "model": st.sampled_from(sorted(DIMS)),
        "created_at": times,
        "response": st.sampled_from(RESPONSES),
        "is_refusal": st.none() | st.booleans(),
        "toxicity": st.none() | st.sampled_from([0.0, 0.49, 0.5, 1.0]) | st.floats(0, 1, width=32),
        "feedback": st.none() | st.sampled_from([-1, 0, 1]),
        "correct": st.none() | st.booleans(),
        "latency_ms": st.none() | st.floats(0, 5000, width=32),
    }
)


@st.composite
def embedding_batch(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from(sorted(DIMS)))
    rows = draw(st.integers(1, 12))
    # Components whose square underflows float4 are a separate, known problem
    # (test_bad_input.py::test_tiny_embedding_components_are_logged); here: the arithmetic.
    component = st.floats(-10, 10, width=32).map(lambda x: 0.0 if abs(x) < 1e-6 else x)
    values = draw(st.lists(component, min_size=rows * DIMS[model], max_size=rows * DIMS[model]))
    return {
        "model": model,
        "matrix": np.array(values, dtype=np.float32).reshape(rows, DIMS[model]),
        "times": draw(st.lists(times, min_size=rows, max_size=rows)),
    }


# How a batch reaches the database, and what happens to its transaction.
METHODS = ("sdk", "single_rows", "multi_row")
FATES = ("commit", "commit", "savepoint_rolled_back", "rolled_back")
operation = st.one_of(
    st.tuples(st.just("interactions"), st.lists(interaction, min_size=1, max_size=15),
              st.sampled_from(METHODS), st.sampled_from(FATES)),
    st.tuples(st.just("embeddings"), embedding_batch(), st.sampled_from(METHODS), st.sampled_from(FATES)),
    st.tuples(st.just("labels"), st.lists(st.integers(0, 10_000), min_size=1, max_size=6),
              st.sampled_from(["correct", "feedback", "created_at", "toxicity"]), st.integers(0, 3)),
    st.tuples(st.just("compact")),
)  # fmt: skip


# -- writing ---------------------------------------------------------------------------------
INTERACTION_INSERT = (
    "INSERT INTO drift.interaction_log (model, created_at, response, is_refusal, toxicity, feedback, correct,"
    " latency_ms) VALUES (%(model)s, %(created_at)s, %(response)s, %(is_refusal)s, %(toxicity)s, %(feedback)s,"
    " %(correct)s, %(latency_ms)s)"
)
EMBEDDING_INSERT = "INSERT INTO drift.embeddings_log (model, created_at, embedding) VALUES (%s, %s, %s)"


def insert_interactions(conn: psycopg.Connection[Any], rows: list[dict[str, Any]], method: str) -> None:
    if method == "single_rows":
        conn.cursor().executemany(INTERACTION_INSERT, rows)  # one statement (and trigger run) per row
        return
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    params = [r[k] for r in rows for k in ("model", "created_at", "response", "is_refusal", "toxicity",
                                             "feedback", "correct", "latency_ms")]  # fmt: skip
    conn.execute(
        "INSERT INTO drift.interaction_log (model, created_at, response, is_refusal, toxicity, feedback, correct,"
        f" latency_ms) VALUES {values}",
        params,
    )


def insert_embeddings(conn: psycopg.Connection[Any], batch: dict[str, Any], method: str) -> None:
    rows = [(batch["model"], t, v) for t, v in zip(batch["times"], batch["matrix"], strict=True)]
    if method == "single_rows":
        conn.cursor().executemany(EMBEDDING_INSERT, rows)
        return
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    conn.execute(
        f"INSERT INTO drift.embeddings_log (model, created_at, embedding) VALUES {values}",
        [x for row in rows for x in row],
    )


def reset(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "TRUNCATE drift.interaction_log, drift.embeddings_log, drift.interaction_rollup,"
        " drift.interaction_rollup_delta, drift.embedding_rollup, drift.embedding_rollup_delta,"
        " drift.baselines, drift.models CASCADE"
    )


def one_interaction(
    model: str, at: datetime, response: str, is_refusal: bool | None, toxicity: float, feedback: int,
    correct: bool | None, latency_ms: float,
) -> dict[str, Any]:  # fmt: skip
    return {"model": model, "created_at": at, "response": response, "is_refusal": is_refusal, "toxicity": toxicity,
            "feedback": feedback, "correct": correct, "latency_ms": latency_ms}  # fmt: skip


# -- reading ---------------------------------------------------------------------------------
def as_array(vector: Any) -> np.ndarray:
    """A pgvector value as loaded by psycopg (pgvector.Vector) as a float64 array."""
    return np.asarray(vector.to_numpy(), dtype=np.float64)


def raw_interactions(conn: psycopg.Connection[Any]) -> dict[Key, tuple[float, ...]]:
    rows = conn.execute(
        f"SELECT model, {BUCKET}, {RAW_INTERACTION_AGGREGATES} FROM drift.interaction_log GROUP BY 1, 2"
    ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def rolled_interactions(conn: psycopg.Connection[Any], with_deltas: bool) -> dict[Key, tuple[float, ...]]:
    columns = ", ".join(f"sum({c})" for c in COUNT_COLUMNS + SUM_COLUMNS)
    source = "drift.interaction_rollup"
    if with_deltas:
        source = "(SELECT * FROM drift.interaction_rollup UNION ALL SELECT * FROM drift.interaction_rollup_delta)"
    rows = conn.execute(f"SELECT model, bucket, {columns} FROM {source} s GROUP BY 1, 2").fetchall()
    # A bucket every row moved out of (created_at UPDATE) keeps an all-zero row: nothing to count.
    return {(r[0], r[1]): tuple(r[2:]) for r in rows if any(r[2:])}


def raw_embeddings(conn: psycopg.Connection[Any]) -> dict[Key, tuple[int, np.ndarray, np.ndarray]]:
    out: dict[Key, list[np.ndarray]] = defaultdict(list)
    for model, bucket, vector in conn.execute(f"SELECT model, {BUCKET}, embedding FROM drift.embeddings_log"):
        out[(model, bucket)].append(as_array(vector))
    return {k: (len(v), np.sum(v, axis=0), np.sum(np.square(v), axis=0)) for k, v in out.items()}


def rolled_embeddings(
    conn: psycopg.Connection[Any], with_deltas: bool
) -> dict[Key, tuple[int, np.ndarray, np.ndarray]]:
    query = "SELECT model, bucket, n, vec_sum, sq_sum FROM drift.embedding_rollup"
    if with_deltas:
        query += " UNION ALL SELECT model, bucket, n, vec_sum, sq_sum FROM drift.embedding_rollup_delta"
    out: dict[Key, tuple[int, np.ndarray, np.ndarray]] = {}
    for model, bucket, n, vec_sum, sq_sum in conn.execute(query):
        n0, v0, s0 = out.get((model, bucket), (0, 0.0, 0.0))
        out[(model, bucket)] = (n0 + n, v0 + as_array(vec_sum), s0 + as_array(sq_sum))
    return out


def assert_interactions_equal(rolled: dict[Key, tuple[float, ...]], raw: dict[Key, tuple[float, ...]]) -> None:
    assert sorted(rolled) == sorted(raw)
    n = len(COUNT_COLUMNS)
    for key, expected in raw.items():
        got = rolled[key]
        assert dict(zip(COUNT_COLUMNS, got[:n], strict=True)) == dict(zip(COUNT_COLUMNS, expected[:n], strict=True)), (
            key
        )
        # Sums of real (float4) values: equal up to float4 rounding.
        np.testing.assert_allclose(np.array(got[n:], float), np.array(expected[n:], float), rtol=1e-4, atol=1e-3)


def assert_embeddings_equal(rolled: dict[Key, tuple[int, Any, Any]], raw: dict[Key, tuple[int, Any, Any]]) -> None:
    assert sorted(rolled) == sorted(raw)
    for key, (n, vec_sum, sq_sum) in raw.items():
        assert rolled[key][0] == n, key
        np.testing.assert_allclose(rolled[key][1], vec_sum, rtol=1e-4, atol=1e-3, err_msg=str(key))
        np.testing.assert_allclose(rolled[key][2], sq_sum, rtol=1e-4, atol=1e-3, err_msg=str(key))


def assert_rollups_match_raw(conn: psycopg.Connection[Any], with_deltas: bool) -> None:
    assert_interactions_equal(rolled_interactions(conn, with_deltas), raw_interactions(conn))
    assert_embeddings_equal(rolled_embeddings(conn, with_deltas), raw_embeddings(conn))


def assert_windows_match_raw(conn: psycopg.Connection[Any], model: str, start: datetime, end: datetime) -> None:
    """drift.interaction_window / embedding_window (what the drift reports read) and
    drift.embedding_buckets vs the raw rows."""
    columns = ", ".join(COUNT_COLUMNS + SUM_COLUMNS)
    window = conn.execute(f"SELECT {columns} FROM drift.interaction_window(%s, %s, %s)", (model, start, end)).fetchone()
    raw = conn.execute(
        f"SELECT {RAW_INTERACTION_AGGREGATES} FROM drift.interaction_log"
        " WHERE model = %s AND created_at >= %s AND created_at < %s",
        (model, start, end),
    ).fetchone()
    assert window is not None and raw is not None
    assert_interactions_equal({(model, start): tuple(window)}, {(model, start): tuple(raw)})

    n, vec_sum, sq_sum = conn.execute(
        "SELECT n, vec_sum, sq_sum FROM drift.embedding_window(%s, %s, %s)", (model, start, end)
    ).fetchone() or (0, None, None)
    vectors = [
        as_array(v)
        for (v,) in conn.execute(
            "SELECT embedding FROM drift.embeddings_log WHERE model = %s AND created_at >= %s AND created_at < %s",
            (model, start, end),
        )
    ]
    assert n == len(vectors)
    if vectors:
        np.testing.assert_allclose(as_array(vec_sum), np.sum(vectors, axis=0), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(as_array(sq_sum), np.sum(np.square(vectors), axis=0), rtol=1e-4, atol=1e-3)
    else:
        assert vec_sum is None

    # drift.embedding_buckets (what the sequential test folds): the same rows, bucket by bucket.
    per_bucket = {
        (model, bucket): (count, as_array(vs), as_array(ss))
        for bucket, count, vs, ss in conn.execute(
            "SELECT bucket, n, vec_sum, sq_sum FROM drift.embedding_buckets(%s, %s, %s)", (model, start, end)
        )
    }
    raw_buckets = {k: v for k, v in raw_embeddings(conn).items() if k[0] == model and start <= k[1] < end}
    assert_embeddings_equal(per_bucket, raw_buckets)


# -- tests -----------------------------------------------------------------------------------
@pytest.fixture
def client(db_url: str) -> Iterator[driftloop.Client]:
    with driftloop.connect(db_url) as c:
        yield c


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operations=st.lists(operation, min_size=1, max_size=7),
    windows=st.lists(st.tuples(st.sampled_from(sorted(DIMS)), st.integers(0, 9), st.integers(1, 10)), max_size=3),
)
def test_rollups_equal_aggregates_over_raw_rows(
    conn: psycopg.Connection[Any],
    client: driftloop.Client,
    operations: list[tuple[Any, ...]],
    windows: list[tuple[str, int, int]],
) -> None:
    reset(conn)
    expected_interactions = expected_embeddings = 0
    for op in operations:
        if op[0] == "compact":
            conn.execute("SELECT drift.compact_rollups()")
            continue
        if op[0] == "labels":
            _, picks, column, value = op
            ids = [r[0] for r in conn.execute("SELECT id FROM drift.interaction_log ORDER BY id")]
            if not ids:
                continue
            chosen = sorted({ids[p % len(ids)] for p in picks})
            new_value: Any = {
                "correct": [None, True, False, True][value],
                "feedback": [None, -1, 0, 1][value],
                "created_at": BASE + timedelta(minutes=value * 3, seconds=7),
                "toxicity": [None, 0.1, 0.5, 0.9][value],
            }[column]
            conn.execute(f"UPDATE drift.interaction_log SET {column} = %s WHERE id = ANY(%s)", (new_value, chosen))
            continue
        kind, payload, method, fate = op
        size = len(payload) if kind == "interactions" else len(payload["matrix"])
        if method == "sdk":
            if kind == "interactions":
                client.log_interactions(payload)
            else:
                client.log_embeddings(payload["model"], payload["matrix"], created_at=payload["times"])
            fate = "commit"
        else:
            write = insert_interactions if kind == "interactions" else insert_embeddings
            with conn.transaction() as tx:
                if fate == "savepoint_rolled_back":
                    # The first part stays; the rest is written, then undone by its savepoint.
                    kept, undone = split(kind, payload)
                    write(conn, kept, method)
                    with conn.transaction() as savepoint:
                        write(conn, undone, method)
                        raise_rollback(savepoint)
                    size = len(kept) if kind == "interactions" else len(kept["matrix"])
                else:
                    write(conn, payload, method)
                    if fate == "rolled_back":
                        raise_rollback(tx)
        if fate != "rolled_back":
            if kind == "interactions":
                expected_interactions += size
            else:
                expected_embeddings += size

    assert conn.execute("SELECT count(*) FROM drift.interaction_log").fetchone() == (expected_interactions,)
    assert conn.execute("SELECT count(*) FROM drift.embeddings_log").fetchone() == (expected_embeddings,)
    assert_rollups_match_raw(conn, with_deltas=True)
    for model, start, length in windows:
        begin = BASE + timedelta(minutes=start)
        assert_windows_match_raw(conn, model, begin, begin + timedelta(minutes=length))

    conn.execute("SELECT drift.compact_rollups()")
    pending = (
        "SELECT (SELECT count(*) FROM drift.interaction_rollup_delta)"
        " + (SELECT count(*) FROM drift.embedding_rollup_delta)"
    )
    assert conn.execute(pending).fetchone() == (0,)
    assert_rollups_match_raw(conn, with_deltas=False)


def raise_rollback(tx: psycopg.Transaction) -> None:
    raise psycopg.Rollback(tx)


def split(kind: str, payload: Any) -> tuple[Any, Any]:
    """A batch cut in two non-empty parts (a single row is duplicated: one kept, one undone)."""
    if kind == "interactions":
        cut = max(1, len(payload) // 2)
        return payload[:cut], payload[cut:] or payload
    cut = max(1, len(payload["matrix"]) // 2)
    first = {**payload, "matrix": payload["matrix"][:cut], "times": payload["times"][:cut]}
    rest = {**payload, "matrix": payload["matrix"][cut:], "times": payload["times"][cut:]}
    return first, rest if len(rest["matrix"]) else payload


def test_many_single_row_inserts_in_one_transaction(conn: psycopg.Connection[Any]) -> None:
    """The hot-bucket case: hundreds of one-row statements into the same minute of one model."""
    rng = np.random.default_rng(7)
    at = BASE + timedelta(seconds=5)
    with conn.transaction():
        for i in range(300):
            conn.execute(EMBEDDING_INSERT, ("hot", at + timedelta(milliseconds=i), rng.standard_normal(4)))
            conn.execute(
                INTERACTION_INSERT,
                {"model": "hot", "created_at": at, "response": RESPONSES[i % 4], "is_refusal": None,
                 "toxicity": float(rng.random()), "feedback": [-1, 0, 1][i % 3], "correct": bool(i % 2),
                 "latency_ms": 10.0 * i},
            )  # fmt: skip
    assert conn.execute(
        "SELECT sum(n) FROM drift.embedding_window('hot', %s, %s)", (BASE, BASE + timedelta(minutes=1))
    ).fetchone() == (300,)
    assert_rollups_match_raw(conn, with_deltas=True)
    conn.execute("SELECT drift.compact_rollups()")
    assert conn.execute("SELECT count(*) FROM drift.embedding_rollup WHERE model = 'hot'").fetchone() == (1,)
    assert_rollups_match_raw(conn, with_deltas=False)


def test_concurrent_writers(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """Four writers with their own connections hit the same model and bucket at once, while
    another session keeps compacting and sending late labels."""
    writers, statements = 4, 25
    barrier = threading.Barrier(writers + 1)
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def write(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            with connect(db_url, autocommit=True) as own:
                barrier.wait()
                for i in range(statements):
                    at = BASE + timedelta(seconds=int(rng.integers(0, 120)))
                    rows = int(rng.integers(1, 6))
                    batch = {"model": "shared", "matrix": rng.standard_normal((rows, 8)), "times": [at] * rows}
                    interaction = one_interaction("shared", at, RESPONSES[i % 4], None, 0.5, 1, i % 3 == 0, 1.0)
                    # Each transaction: single-row statements (staged until commit) or one multi-row one.
                    with own.transaction():
                        insert_embeddings(own, batch, "multi_row" if i % 2 else "single_rows")
                        insert_embeddings(own, batch, "single_rows")
                        insert_interactions(own, [interaction] * 2, "single_rows" if i % 2 else "multi_row")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def compact_and_label() -> None:
        try:
            with connect(db_url, autocommit=True) as own:
                barrier.wait()
                while writing.is_set():
                    own.execute("SELECT drift.compact_rollups()")
                    own.execute(
                        "UPDATE drift.interaction_log SET correct = NOT coalesce(correct, false), feedback = -1"
                        " WHERE id IN (SELECT id FROM drift.interaction_log ORDER BY random() LIMIT 3)"
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(seed,)) for seed in range(writers)]
    other = threading.Thread(target=compact_and_label)
    for t in [*threads, other]:
        t.start()
    for t in threads:
        t.join()
    writing.clear()
    other.join()
    assert errors == []
    assert conn.execute("SELECT count(*) FROM drift.interaction_log").fetchone() == (2 * writers * statements,)
    assert_rollups_match_raw(conn, with_deltas=True)
    conn.execute("SELECT drift.compact_rollups()")
    assert_rollups_match_raw(conn, with_deltas=False)


def test_a_writer_never_waits_for_another_writers_open_transaction(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """Writers must not serialise on a hot rollup row: with one transaction still open in the same
    model and bucket, another writer's inserts go through (lock_timeout turns a wait into an error)."""
    at = BASE + timedelta(seconds=30)
    conn.execute(EMBEDDING_INSERT, ("busy", at, np.ones(3)))  # the model is registered and committed
    insert_interactions(conn, [one_interaction("busy", at, "ok", False, 0.1, 1, True, 5.0)], "multi_row")
    with connect(db_url) as first, connect(db_url) as second:
        first.execute(EMBEDDING_INSERT, ("busy", at, np.full(3, 2.0)))
        insert_interactions(first, [one_interaction("busy", at, "fine", None, 0.9, -1, False, 7.0)], "single_rows")
        first.execute("SELECT drift.compact_rollups()")  # even a compaction in progress must not block
        second.execute("SET lock_timeout = '3s'")
        second.execute(EMBEDDING_INSERT, ("busy", at, np.full(3, 3.0)))
        insert_interactions(second, [one_interaction("busy", at, "no", True, 0.2, 0, None, 9.0)], "multi_row")
        second.commit()
        first.rollback()
    n, vec_sum = conn.execute(
        "SELECT n, vec_sum FROM drift.embedding_window('busy', %s, %s)", (BASE, BASE + timedelta(minutes=1))
    ).fetchone() or (0, None)
    assert n == 2
    np.testing.assert_allclose(as_array(vec_sum), np.full(3, 4.0))
    assert_rollups_match_raw(conn, with_deltas=True)


def test_replayed_idempotent_batches_are_counted_once(db_url: str, conn: psycopg.Connection[Any]) -> None:
    rows = [
        {**one_interaction("keyed", BASE + timedelta(seconds=i), "ok", False, 0.1, 1, True, 3.0),
         "idempotency_key": f"req-{i}", "embedding": [float(i), 1.0, 0.0]}
        for i in range(5)
    ]  # fmt: skip
    with driftloop.connect(db_url) as client:
        first = client.log_interactions(rows)
        assert client.log_interactions(rows) == first
        # Two replays and one new row in one batch: only the new row (and its embedding) is written.
        fresh = {**rows[0], "idempotency_key": "req-new", "embedding": [9.0, 1.0, 0.0]}
        again = client.log_interactions([rows[3], fresh, rows[1]])
        assert again[0] == first[3] and again[2] == first[1] and again[1] not in first
    assert conn.execute("SELECT count(*) FROM drift.interaction_log").fetchone() == (6,)
    assert conn.execute("SELECT count(*) FROM drift.embeddings_log").fetchone() == (6,)
    assert_rollups_match_raw(conn, with_deltas=True)


def test_a_key_logged_concurrently_returns_the_first_rows_id(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """A retry that arrives while the first request's transaction is still open waits for it,
    then gets the id that request wrote (not an error, not a second row)."""
    row = {**one_interaction("keyed", BASE, "ok", False, 0.1, 1, True, 3.0), "idempotency_key": "req-1"}
    results: list[Any] = []
    with connect(db_url) as first, driftloop.connect(db_url) as client:
        # The same request (same payload) from another client: the SDK's row is a replay of it.
        written = first.execute(
            "INSERT INTO drift.interaction_log (model, created_at, response, is_refusal, toxicity, feedback, correct,"
            " latency_ms, idempotency_key) VALUES ('keyed', %s, 'ok', false, 0.1, 1, true, 3.0, 'req-1') RETURNING id",
            (BASE,),
        ).fetchone()
        assert written is not None

        def retry() -> None:
            try:
                results.append(client.log_interactions([row]))
            except BaseException as exc:  # reported by the main thread
                results.append(exc)

        retrying = threading.Thread(target=retry)
        retrying.start()
        # The retry is blocked on the first request's unique key until it commits.
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        while retrying.is_alive() and conn.execute(waiting).fetchone() == (0,):
            retrying.join(0.05)
        first.commit()
        retrying.join()
    assert results == [[written[0]]]
    assert conn.execute("SELECT count(*) FROM drift.interaction_log").fetchone() == (1,)
