"""Hostile input to the SQL functions, fuzzed: a clear error (SQLSTATE class 22, 23 or P0) or success.

What users call by hand — set_baseline, evaluate, settings updates, refusal-pattern rows —
gets arbitrary arguments. Never allowed: an internal error (XX000), an error from inside our
own code (42xxx from dynamic SQL, 54xxx limits, a statement timeout standing for a hang), or a
database left broken: after every case ingestion and evaluation still work.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

import driftloop
from driftloop.database import connect, with_dbname

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
CLEAR = ("22", "23", "P0")  # data exceptions, integrity violations, our own RAISE
AT = datetime(2026, 3, 2, tzinfo=UTC)

# Text PostgreSQL can receive at all (NUL cannot be sent in a text parameter).
sql_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30),
    st.sampled_from(["", "'", "x" * 300, "%s", "$1", "); DROP TABLE drift.settings; --", "NaN", "-0"]),
)
timestamps = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.sampled_from(["infinity", "-infinity", "epoch", "294276-12-31 23:59:59+00", "4713-01-01 BC"]),
    st.builds(lambda m: AT + timedelta(minutes=m), st.integers(-3000, 3000)),
    st.none(),
)
intervals = st.one_of(
    st.sampled_from(
        ["infinity", "-infinity", "0", "-1 hour", "1 microsecond", "90 days", "91 days", "1000000 years",
         "178000000 years", "1 mon", "P1D", "1 hour 30 minutes", "@ 1 minute ago", "00:00:01"]
    ),
    st.builds(lambda n, u: f"{n} {u}", st.integers(-(10**12), 10**12), st.sampled_from(["seconds", "minutes", "days"])),
)  # fmt: skip
numbers_text = st.one_of(
    st.floats().map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e308", "1e-400", "0x10", " 1 ", "1,5"]),
)
regex_chars = st.sampled_from(list("ab()[]{}|*+?.^$\\-,0123456789zZ:=!<>") + ["[[:alpha:]]", "\\m", "(?i)", "***"])
patterns = st.one_of(st.lists(regex_chars, max_size=12).map("".join), sql_text)
KEYS = [
    "current_window", "bucket_width", "evaluate_interval", "cooldown", "auto_baseline", "false_alarm_interval",
    "min_samples", "novelty_per_bucket", "novelty_sample_size", "alpha", "embedding_drift_threshold",
    "refusal_rate_threshold", "toxicity_rate_threshold", "accuracy_drop_threshold", "toxic_at", "novelty_quantile",
    "embedding_distance_floor",
]  # fmt: skip


@pytest.fixture(scope="module")
def database(server_url: str, template_url: str) -> Iterator[str]:
    name = f"dl_test_fuzz_sql_{uuid.uuid4().hex[:8]}"
    template = conninfo_to_dict(template_url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = with_dbname(server_url, name)
    with driftloop.connect(url) as client:
        rng = np.random.default_rng(7)
        rows = [
            {"model": "fz", "created_at": AT - timedelta(minutes=i % 300), "response": "I cannot help with that."
             if i % 9 == 0 else "Sure.", "toxicity": float(rng.random()), "correct": bool(i % 3),
             "embedding": rng.normal(size=4).tolist()}
            for i in range(600)
        ]  # fmt: skip
        client.log_interactions(rows)
    yield url
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def db(database: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(database, autocommit=True) as c:
        c.execute("SET statement_timeout = '20s'")  # a hang becomes 57014, which fails the case
        yield c


def outcome(db: psycopg.Connection[Any], sql: str, params: Any) -> tuple[str, str]:
    """Run one statement: ('ok', '') or the SQLSTATE and message of a clear error; anything else fails."""
    try:
        db.execute(sql, params)
    except psycopg.Error as exc:
        state = exc.sqlstate or ""
        assert state[:2] in CLEAR, f"{sql} {params!r}: {state} {exc}"
        event(f"refused: {state}")
        return state, exc.diag.message_primary or ""
    event("ok")
    return "ok", ""


def still_usable(db: psycopg.Connection[Any]) -> None:
    assert not db.closed and not db.broken
    db.execute(
        "INSERT INTO drift.interaction_log (model, created_at, response) VALUES ('fz', %s, 'I cannot help with that.')",
        (AT,),
    )
    db.execute("SELECT count(*) FROM drift.evaluate(%s)", (AT,))


@FUZZ
@given(
    model=st.integers(0, 3).flatmap(lambda i: sql_text if i == 0 else st.just("fz")),
    starts=timestamps,
    ends=timestamps,
    kinds=st.one_of(st.none(), st.lists(st.one_of(st.sampled_from(["embedding", "behavior", "accuracy"]), sql_text))),
)
def test_set_baseline(db: psycopg.Connection[Any], model: str, starts: Any, ends: Any, kinds: Any) -> None:
    if kinds is None:
        outcome(db, "SELECT * FROM drift.set_baseline(%s, %s::timestamptz, %s::timestamptz)", (model, starts, ends))
    else:
        outcome(db, "SELECT * FROM drift.set_baseline(%s, %s::timestamptz, %s::timestamptz, %s::text[])",
                (model, starts, ends, kinds))  # fmt: skip
    still_usable(db)


@FUZZ
@given(as_of=timestamps)
def test_evaluate(db: psycopg.Connection[Any], as_of: Any) -> None:
    outcome(db, "SELECT count(*) FROM drift.evaluate(%s::timestamptz)", (as_of,))
    outcome(db, "SELECT count(*) FROM drift.drift_report(%s::timestamptz)", (as_of,))
    still_usable(db)


@FUZZ
@given(key=st.one_of(st.sampled_from(KEYS), sql_text), value=st.one_of(intervals, numbers_text, sql_text))
def test_settings_updates(db: psycopg.Connection[Any], key: str, value: str) -> None:
    before = dict(db.execute("SELECT key, value FROM drift.settings").fetchall())
    if key in before:
        outcome(db, "UPDATE drift.settings SET value = %s WHERE key = %s", (value, key))
    else:
        outcome(db, "INSERT INTO drift.settings (key, value) VALUES (%s, %s)", (key, value))
    outcome(db, "DELETE FROM drift.settings WHERE key = %s", (key,))
    try:
        # Whatever was accepted, evaluation and ingestion must still work with it.
        still_usable(db)
    finally:
        for k, v in before.items():
            db.execute("UPDATE drift.settings SET value = %s WHERE key = %s AND value <> %s", (v, k, v))


@FUZZ
@given(pattern=patterns, enabled=st.booleans())
def test_refusal_pattern_rows(db: psycopg.Connection[Any], pattern: str, enabled: bool) -> None:
    state, message = outcome(
        db,
        "INSERT INTO drift.refusal_patterns (pattern, enabled) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (pattern, enabled),
    )
    if state == "2201B":
        assert "refusal pattern" in message, message
    try:
        still_usable(db)  # an accepted pattern never stops ingestion
    finally:
        db.execute("DELETE FROM drift.refusal_patterns WHERE pattern = %s AND id > 5", (pattern,))
