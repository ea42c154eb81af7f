"""Bad input through the SDK (and raw SQL): a clear error naming row and field, nothing written.

Every case sends a batch whose other rows are fine, then checks that not one row of it,
nor any rollup, model registration or count, reached the database.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

import driftloop
from driftloop.database import connect, with_dbname
from driftloop.errors import InputError

AT = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
DIMS = 3
NAN, INF = math.nan, math.inf


def good_batch() -> list[dict[str, Any]]:
    """Four valid interactions; rows 0, 1 and 3 carry an embedding (row 2 has none)."""
    rows: list[dict[str, Any]] = [
        {"model": "bot", "created_at": AT + timedelta(seconds=i), "prompt": f"q{i}", "response": "Sure.",
         "toxicity": 0.1, "feedback": 1, "correct": True, "latency_ms": 12.5, "metadata": {"i": i}}
        for i in range(4)
    ]  # fmt: skip
    for i in (0, 1, 3):
        rows[i]["embedding"] = [0.1 * i, 0.2, 0.3]
    return rows


def snapshot(db: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """Everything a batch could have written."""
    row = db.execute(
        """
        SELECT (SELECT count(*) FROM drift.interaction_log), (SELECT count(*) FROM drift.embeddings_log),
            (SELECT count(*) FROM drift.models),
            (SELECT coalesce(sum(interactions), 0) FROM drift.interaction_rollup)
                + (SELECT coalesce(sum(interactions), 0) FROM drift.interaction_rollup_delta),
            (SELECT coalesce(sum(n), 0) FROM drift.embedding_rollup)
                + (SELECT coalesce(sum(n), 0) FROM drift.embedding_rollup_delta)
        """
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture(scope="module")
def database(server_url: str, template_url: str) -> Iterator[str]:
    """One migrated database for the whole module: every case checks only what it changed."""
    name = f"dl_test_bad_input_{uuid.uuid4().hex[:8]}"
    template = conninfo_to_dict(template_url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield with_dbname(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def db(database: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(database, autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def dl(database: str) -> Iterator[driftloop.Client]:
    with driftloop.connect(database) as client:
        # The model exists with 3-dimensional embeddings, so a dimension can be wrong.
        client.log_embeddings("bot", np.ones((2, DIMS)), created_at=AT - timedelta(hours=1))
        yield client


BAD_INTERACTIONS = [
    # (field set on the row, value, row it is set on)
    ("toxicity", 1.5, 2),
    ("toxicity", -0.1, 2),
    ("toxicity", NAN, 2),
    ("toxicity", INF, 1),
    ("toxicity", "high", 2),
    ("feedback", 2, 2),
    ("feedback", -2, 0),
    ("feedback", 0.5, 2),
    ("feedback", True, 2),
    ("latency_ms", INF, 2),
    ("latency_ms", NAN, 2),
    ("latency_ms", -3.0, 2),
    ("tokens", 12, 2),  # unknown field
    ("prompt", b"caf\xe9 au lait", 2),  # Latin-1, not UTF-8
    ("response", b"\xff\xfe", 3),
    ("model", b"\xc3\x28", 2),
    ("response", "before\x00after", 2),  # NUL: PostgreSQL text cannot hold it
    ("prompt", "\ud800 lone surrogate", 2),
    ("prompt", "x" * 1_000_001, 2),  # oversized
    ("model", "m" * 201, 2),
    ("model_version", "v" * 201, 2),
    ("idempotency_key", "k" * 201, 2),
    ("metadata", {"blob": "x" * 70_000}, 2),
    ("metadata", {"score": NAN}, 2),
    ("metadata", {"when": datetime(2026, 1, 1, tzinfo=UTC)}, 2),  # not JSON
    ("created_at", datetime(2026, 2, 2, 10, 0), 2),  # naive: ambiguous
    ("created_at", "2026-02-02T10:00:00", 2),  # naive ISO string
    ("created_at", "yesterday", 2),
    ("model", "", 2),
    ("model", None, 2),
    ("is_refusal", "yes", 2),
    ("correct", 1, 2),
    ("embedding", [0.1, NAN, 0.3], 3),
    ("embedding", [INF, 0.2, 0.3], 1),
    ("embedding", [0.1, 0.2], 3),  # 2 dimensions; the model's embeddings have 3
    ("embedding", [0.1, 0.2, 0.3, 0.4], 2),
    ("embedding", [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], 3),  # two vectors for one interaction
    ("embedding", ["a", "b", "c"], 3),
    ("embedding", [1e39, 0.2, 0.3], 3),  # beyond float32
]


@pytest.mark.parametrize(("field", "value", "row"), BAD_INTERACTIONS)
def test_bad_interaction_is_refused_naming_row_and_field(
    dl: driftloop.Client, db: psycopg.Connection[Any], field: str, value: Any, row: int
) -> None:
    batch = good_batch()
    if value is None:
        del batch[row][field]
    else:
        batch[row][field] = value
    before = snapshot(db)
    with pytest.raises(InputError) as caught:
        dl.log_interactions(batch)
    assert (caught.value.row, caught.value.field) == (row, field), str(caught.value)
    assert f"row {row}" in str(caught.value) and repr(field) in str(caught.value)
    assert snapshot(db) == before

    # The same batch, fixed, is written whole: the snapshot does see writes.
    dl.log_interactions(good_batch())
    after = snapshot(db)
    assert after[:2] == (before[0] + 4, before[1] + 3)


def test_a_row_that_is_not_an_object_is_refused(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    before = snapshot(db)
    with pytest.raises(InputError) as caught:
        dl.log_interactions([*good_batch()[:2], "oops"])  # type: ignore[list-item]
    assert (caught.value.row, caught.value.field) == (2, None)
    assert snapshot(db) == before
    assert dl.log_interactions([]) == []
    assert snapshot(db) == before


def test_embeddings_of_new_models_must_agree_within_a_batch(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    batch = good_batch()
    for row in batch:
        row["model"] = "fresh"  # no embeddings yet: the batch itself fixes the dimension
    batch[3]["embedding"] = [0.1, 0.2]
    before = snapshot(db)
    with pytest.raises(InputError) as caught:
        dl.log_interactions(batch)
    assert (caught.value.row, caught.value.field) == (3, "embedding"), str(caught.value)
    assert snapshot(db) == before


BAD_EMBEDDINGS = [
    # (array, created_at, interaction_ids, expected row, expected field)
    ([[0.1, 0.2, 0.3], [0.1, NAN, 0.3]], None, None, 1, "embedding"),
    ([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [-INF, 0.2, 0.3]], None, None, 2, "embedding"),
    ([[0.1, 0.2], [0.1, 0.2]], None, None, 0, "embedding"),  # 2 dimensions; the model uses 3
    ([[[0.1, 0.2, 0.3]]], None, None, None, "embedding"),  # 3-D array
    ([["a", "b", "c"]], None, None, None, "embedding"),
    ([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], datetime(2026, 2, 2, 10, 0), None, None, "created_at"),  # naive
    ([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], [AT, datetime(2026, 2, 2)], None, 1, "created_at"),
    ([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], [AT], None, None, "created_at"),  # one stamp for two rows
    ([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], AT, [1], None, "interaction_ids"),
]


@pytest.mark.parametrize(("array", "created_at", "interaction_ids", "row", "field"), BAD_EMBEDDINGS)
def test_bad_embeddings_are_refused_naming_row_and_field(
    dl: driftloop.Client,
    db: psycopg.Connection[Any],
    array: Any,
    created_at: Any,
    interaction_ids: Any,
    row: int | None,
    field: str,
) -> None:
    before = snapshot(db)
    with pytest.raises(InputError) as caught:
        dl.log_embeddings("bot", array, created_at=created_at, interaction_ids=interaction_ids)
    assert (caught.value.row, caught.value.field) == (row, field), str(caught.value)
    assert snapshot(db) == before


@pytest.mark.parametrize("model", ["", b"\xff", "m" * 201, "nul\x00name"])
def test_bad_model_name_for_embeddings(dl: driftloop.Client, db: psycopg.Connection[Any], model: Any) -> None:
    before = snapshot(db)
    with pytest.raises(InputError) as caught:
        dl.log_embeddings(model, [[0.1, 0.2, 0.3]])
    assert caught.value.field == "model"
    assert snapshot(db) == before


def test_wrong_dimension_through_raw_sql_is_rejected_by_the_trigger(
    dl: driftloop.Client, db: psycopg.Connection[Any]
) -> None:
    before = snapshot(db)
    with pytest.raises(psycopg.errors.DataException) as caught:
        db.execute(
            "INSERT INTO drift.embeddings_log (model, created_at, embedding)"
            " VALUES ('bot', %s, '[1,2,3]'), ('bot', %s, '[1,2]'), ('bot', %s, '[4,5,6]')",
            (AT, AT, AT),
        )
    message = caught.value.diag.message_primary or ""
    assert "field embedding" in message and "2 dimensions" in message and "uses 3" in message
    assert "row id=" in message
    assert snapshot(db) == before

    # A new model's first statement may not mix dimensions either.
    with pytest.raises(psycopg.errors.DataException):
        db.execute(
            "INSERT INTO drift.embeddings_log (model, embedding) VALUES ('other', '[1,2,3]'), ('other', '[1,2]')"
        )
    assert snapshot(db) == before

    # Inside a transaction of single-row statements (the staged path), too.
    with pytest.raises(psycopg.errors.DataException), db.transaction():
        for _ in range(5):
            db.execute("INSERT INTO drift.embeddings_log (model, embedding) VALUES ('bot', '[1,2,3]')")
        db.execute("INSERT INTO drift.embeddings_log (model, embedding) VALUES ('bot', '[1,2,3,4]')")
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        (
            "INSERT INTO drift.embeddings_log (model, embedding) VALUES ('bot', '[NaN,1,2]')",
            psycopg.errors.DataException,
        ),
        (
            "INSERT INTO drift.embeddings_log (model, embedding) VALUES ('bot', '[Infinity,1,2]')",
            psycopg.errors.DataException,
        ),
        (
            "INSERT INTO drift.interaction_log (model, toxicity) VALUES ('bot', 0.2), ('bot', 1.5)",
            psycopg.errors.CheckViolation,
        ),
        (
            "INSERT INTO drift.interaction_log (model, feedback) VALUES ('bot', 1), ('bot', 2)",
            psycopg.errors.CheckViolation,
        ),
        ("INSERT INTO drift.interaction_log (model, toxicity) VALUES ('bot', 'NaN')", psycopg.errors.CheckViolation),
        (
            "INSERT INTO drift.interaction_log (model, latency_ms) VALUES ('bot', 'Infinity')",
            psycopg.errors.CheckViolation,
        ),
        ("INSERT INTO drift.interaction_log (model) VALUES ('')", psycopg.errors.CheckViolation),
    ],
)
def test_raw_sql_bad_values_are_rejected_by_the_schema(
    dl: driftloop.Client, db: psycopg.Connection[Any], sql: str, error: type[Exception]
) -> None:
    before = snapshot(db)
    with pytest.raises(error):
        db.execute(sql)
    assert snapshot(db) == before


def test_tiny_embedding_components_are_logged(dl: driftloop.Client, db: psycopg.Connection[Any]) -> None:
    """1e-30 is a valid float32: its square underflows float4, which must not refuse the row."""
    before = snapshot(db)
    assert dl.log_embeddings("bot", [[1e-30, 0.5, 0.5]], created_at=AT) == 1
    assert snapshot(db)[1] == before[1] + 1


def test_embedding_components_whose_square_overflows_are_an_input_error(
    dl: driftloop.Client, db: psycopg.Connection[Any]
) -> None:
    """1e20 fits float32, but the rollups' sum of squares cannot hold it: a clear InputError."""
    before = snapshot(db)
    with pytest.raises(InputError) as caught:
        dl.log_embeddings("bot", [[0.1, 0.2, 0.3], [1e20, 0.2, 0.3]], created_at=AT)
    assert (caught.value.row, caught.value.field) == (1, "embedding")
    assert snapshot(db) == before
