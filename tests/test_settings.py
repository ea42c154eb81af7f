"""drift.settings: every key of the engine is validated on write by one validator.

Each key has a value of the wrong type or range here, and the test fails when a key of the
shipped settings has none: a new setting cannot land unvalidated.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

# key -> values that must be refused; the first of each is the wrong type.
BAD_VALUES: dict[str, list[str]] = {
    "current_window": ["soon", "0", "-1 hour"],
    "bucket_width": ["wide", "0 minutes", "-1 minute"],
    "evaluate_interval": ["often", "-1 minute"],
    "cooldown": ["a while", "-1 hour"],
    "auto_baseline": ["a day", "-1 day"],
    "false_alarm_interval": ["rarely", "-30 days"],
    "min_samples": ["many", "0", "1.5"],
    "novelty_per_bucket": ["lots", "9", "1000001"],
    "novelty_sample_size": ["lots", "99", "100001"],
    "alpha": ["small", "2", "-0.01", "NaN"],
    "embedding_drift_threshold": ["far", "NaN", "1.5"],
    "refusal_rate_threshold": ["some", "-0.1", "Infinity"],
    "toxicity_rate_threshold": ["some", "1.01"],
    "accuracy_drop_threshold": ["some", "-1"],
    "toxic_at": ["high", "1.5"],
    "novelty_quantile": ["most", "0.4", "1"],
    "embedding_distance_floor": ["none", "-0.1", "2.5"],
    "partition_interval": ["daily", "2 hours", "1 month"],
    "partitions_ahead": ["some", "0", "367"],
    "rollup_hourly_after": ["later", "-1 day", "infinity"],
    "evidence_shift": ["small", "0", "2.5"],
    "evidence_direction_window": ["an hour", "0", "2 days"],
    "evidence_horizon": ["long", "-1 hour", "8 days"],
    "whitened_window": ["three hours", "0", "8 days"],
}
# Valid values at the edges of each range, and a key of the user's own (not checked).
GOOD_VALUES = [
    ("current_window", "30 minutes"), ("evaluate_interval", "0"), ("min_samples", "1"), ("alpha", "0"),
    ("alpha", "1"), ("novelty_per_bucket", "10"), ("novelty_sample_size", "100000"),
    ("novelty_quantile", "0.999"), ("embedding_distance_floor", "2"), ("evidence_shift", "0.01"),
    ("evidence_horizon", "7 days"), ("whitened_window", "7 days"), ("my_own_key", "anything"),
]  # fmt: skip


def setting(conn: psycopg.Connection[Any], key: str) -> str | None:
    row = conn.execute("SELECT value FROM drift.settings WHERE key = %s", (key,)).fetchone()
    return row[0] if row else None


def test_every_shipped_setting_has_bad_values_to_refuse(conn: psycopg.Connection[Any]) -> None:
    keys = {row[0] for row in conn.execute("SELECT key FROM drift.settings")}
    assert keys == set(BAD_VALUES)


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_a_bad_value_is_refused_naming_key_and_value(conn: psycopg.Connection[Any], key: str) -> None:
    before = setting(conn, key)
    for value in BAD_VALUES[key]:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
            conn.execute("UPDATE drift.settings SET value = %s WHERE key = %s", (value, key))
        assert key in str(caught.value) and repr(value) in str(caught.value), (key, value)
        assert setting(conn, key) == before, (key, value)


def test_values_at_the_edges_of_each_range_are_accepted(conn: psycopg.Connection[Any]) -> None:
    upsert = (
        "INSERT INTO drift.settings (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    for key, value in GOOD_VALUES:
        conn.execute(upsert, (key, value))
        assert setting(conn, key) == value
