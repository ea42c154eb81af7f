"""Hostile input through the SDK, fuzzed: a batch is written whole, or refused with InputError and nothing written.

Hypothesis draws batches of interactions (any field, any value: NUL and lone surrogates,
huge and non-finite numbers, wrong types, naive times, deep JSON, mixed-dimension
embeddings, reused idempotency keys) and arrays of embeddings. Whatever comes back must be
one of two outcomes, checked against the database itself:
- ids for every row, each present in the log, the log grown by exactly the new ids;
- InputError, and not one row, rollup delta, model or key written.
Any other exception (a psycopg error, a TypeError) is a failure.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

import driftloop
from driftloop.database import connect, with_dbname
from driftloop.errors import InputError

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

chars = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),  # lone surrogates
    st.sampled_from(["\x00", "'", '"', "\\", "\u202e", "\ufeff", "😀", "%", "$"]),
)
hostile_text = st.one_of(
    st.text(chars, max_size=30),
    st.sampled_from(["", "x" * 201, "'); DROP TABLE drift.settings; --", "\\u0000", "NaN", "%s", "$1"]),
    st.builds(lambda: "y" * 1_000_001),  # beyond the text limit
    st.binary(max_size=8),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([1e300, -0.0, 3.5e38, 1e-50, 0.5, 1, 0, -1, 2]),
)
times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.datetimes(),  # naive
    st.sampled_from(["2026-03-01T10:00:00+00:00", "2026-03-01", "not a time", "infinity"]),
    st.builds(lambda h: datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=h))), st.integers(-23, 23)),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)
vectors = st.one_of(
    st.lists(st.floats(width=32, min_value=-1, max_value=1), min_size=3, max_size=3),
    st.lists(numbers, min_size=0, max_size=4),
    st.lists(st.lists(st.floats(-1, 1), min_size=3, max_size=3), min_size=1, max_size=2),
    hostile_text,
)
any_value = st.one_of(st.none(), st.booleans(), numbers, hostile_text, times, json_values)


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid four times in five: a batch of several rows still gets written now and then."""
    return st.integers(0, 4).flatmap(lambda i: hostile if i == 0 else valid)


FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": mostly(st.sampled_from(["fz-a", "fz-b", "fz-c"]), any_value),
    "created_at": mostly(st.just(datetime(2026, 3, 1, tzinfo=UTC)), st.one_of(times, any_value)),
    "model_version": mostly(st.just("v1"), any_value),
    "prompt": mostly(st.text(max_size=20), st.one_of(hostile_text, any_value)),
    "response": mostly(st.sampled_from(["I cannot help with that.", "Sure."]), st.one_of(hostile_text, any_value)),
    "is_refusal": mostly(st.booleans(), any_value),
    "toxicity": mostly(st.floats(0, 1), any_value),
    "feedback": mostly(st.sampled_from([-1, 0, 1]), any_value),
    "correct": mostly(st.booleans(), any_value),
    "latency_ms": mostly(st.floats(0, 1e6), any_value),
    "metadata": mostly(st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=3), json_values),
    "idempotency_key": mostly(st.one_of(st.none(), st.uuids().map(str), st.sampled_from(["k1", "k2"])), hostile_text),
    "embedding": mostly(st.lists(st.floats(-1, 1, width=32), min_size=3, max_size=3), vectors),
    "unknown_field": any_value,
}


@st.composite
def interaction(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(any_value)  # not a dict at all
    names = draw(st.lists(st.sampled_from(sorted(set(FIELDS) - {"model"})), unique=True, max_size=6))
    row = {"model": draw(FIELDS["model"])} if draw(st.integers(0, 9)) else {}
    row.update({name: draw(FIELDS[name]) for name in names if name != "unknown_field" or draw(st.integers(0, 3)) == 0})
    return row


batches = mostly(st.lists(interaction(), max_size=6), any_value)


def snapshot(db: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = db.execute(
        """SELECT (SELECT count(*) FROM drift.interaction_log), (SELECT count(*) FROM drift.embeddings_log),
                  (SELECT count(*) FROM drift.models), (SELECT count(*) FROM drift.interaction_rollup_delta),
                  (SELECT count(*) FROM drift.embedding_rollup_delta), (SELECT count(*) FROM drift.idempotency_keys),
                  (SELECT count(*) FROM drift.ingest_batches)"""
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture(scope="module")
def database(server_url: str, template_url: str) -> Iterator[str]:
    name = f"dl_test_fuzz_sdk_{uuid.uuid4().hex[:8]}"
    template = conninfo_to_dict(template_url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = with_dbname(server_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE drift.settings SET value = '0' WHERE key = 'evaluate_interval'")
    yield url
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def db(database: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(database, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def dl(database: str) -> Iterator[driftloop.Client]:
    with driftloop.connect(database) as client:
        # fz-a has 3-dimensional embeddings already, so a dimension can be wrong
        client.log_embeddings("fz-a", np.ones((1, 3)), created_at=datetime(2026, 3, 1, tzinfo=UTC))
        yield client


@FUZZ
@given(rows=batches)
def test_log_interactions_writes_all_or_nothing(dl: driftloop.Client, db: psycopg.Connection[Any], rows: Any) -> None:
    before = snapshot(db)
    try:
        ids = dl.log_interactions(rows)
    except InputError as exc:
        assert str(exc)
        assert snapshot(db) == before, f"InputError ({exc}) but something was written"
        event("refused: InputError")
        return
    event("written")
    after = snapshot(db)
    assert len(ids) == len(list(rows))
    present = db.execute("SELECT count(*) FROM drift.interaction_log WHERE id = ANY(%s)", (ids,)).fetchone()
    assert present == (len(set(ids)),), "an id returned is not in the log"
    # Rows are new except replays of a key that was already in the log.
    assert after[0] - before[0] <= len(ids)
    assert after[0] - before[0] == len({i for i in ids if i not in seen_ids})
    seen_ids.update(ids)


seen_ids: set[int] = set()

embedding_arrays = mostly(
    st.lists(st.lists(st.floats(width=32, min_value=-1, max_value=1), min_size=3, max_size=3), min_size=1, max_size=4),
    st.one_of(st.lists(st.lists(numbers, min_size=1, max_size=4), min_size=0, max_size=3), vectors, any_value),
)


@FUZZ
@given(
    model=mostly(st.sampled_from(["fz-a", "fz-e"]), st.one_of(hostile_text, any_value)),
    array=embedding_arrays,
    created_at=mostly(
        st.one_of(st.none(), st.just(datetime(2026, 3, 1, tzinfo=UTC))),
        st.one_of(times, st.lists(times, max_size=4), any_value),
    ),
    keys=mostly(st.none(), st.lists(st.one_of(st.none(), st.sampled_from(["e1", "e2"]), hostile_text), max_size=4)),
)
def test_log_embeddings_writes_all_or_nothing(
    dl: driftloop.Client,
    db: psycopg.Connection[Any],
    model: Any,
    array: Any,
    created_at: Any,
    keys: Any,
) -> None:
    before = snapshot(db)
    try:
        written = dl.log_embeddings(model, array, created_at=created_at, idempotency_keys=keys)
    except InputError as exc:
        assert str(exc)
        assert snapshot(db) == before, f"InputError ({exc}) but something was written"
        event("refused: InputError")
        return
    event("written")
    after = snapshot(db)
    assert after[1] - before[1] == written
    matrix = np.asarray(array, dtype=np.float64)
    assert written <= (matrix.shape[0] if matrix.ndim == 2 else 1)
    assert not math.isnan(float(written))
