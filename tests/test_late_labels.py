"""A late label by id touches one log partition, however many days are kept.

interaction_log is partitioned by created_at, and a label names its row by id alone:
`UPDATE ... WHERE id = $1` plans and probes every partition. The SDK's `feedback()` (and the
`feedback` edge function) look up the partition step of the id first
(`drift.interaction_steps`) and update with that created_at range, which the planner prunes
to one partition: shown by the plan, not by a timing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import driftloop
from driftloop.client import sql
from driftloop.errors import InputError

DAYS = 30


def midnight() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def log_history(conn: psycopg.Connection[Any], days: int) -> None:
    """Ten interactions on each of the past `days` days, oldest first (as traffic arrives), in partitions."""
    conn.execute(
        """INSERT INTO drift.interaction_log (model, created_at, response, correct)
           SELECT 'bot', %s::timestamptz - d * interval '1 day' + i * interval '1 hour', 'ok', true
           FROM generate_series(%s, 1, -1) d, generate_series(0, 9) i
           ORDER BY d DESC, i""",
        (midnight(), days),
    )
    conn.execute("SELECT drift.ensure_partitions(NULL, true)")


def partitions_in_plan(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any]) -> list[str]:
    """The interaction_log partitions an UPDATE's plan touches (planned, not run)."""
    [(plan,)] = conn.execute("EXPLAIN (FORMAT JSON) " + statement, params).fetchall()
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name", "").startswith("interaction_log_"):
            found.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_a_late_label_touches_one_partition(conn: psycopg.Connection[Any], db_url: str) -> None:
    log_history(conn, DAYS)
    day = midnight() - 17 * timedelta(days=1)
    [(row_id,)] = conn.execute(
        "SELECT id FROM drift.interaction_log WHERE created_at = %s + interval '3 hours'", (day,)
    ).fetchall()

    steps = conn.execute("SELECT starts, ends FROM drift.interaction_steps(%s)", (row_id,)).fetchall()
    assert steps == [(day, day + timedelta(days=1))]
    label = {"id": row_id, "set_feedback": False, "feedback": None, "set_correct": True, "correct": False}
    touched = partitions_in_plan(conn, sql("label_interaction"), {**label, "starts": steps[0][0], "ends": steps[0][1]})
    assert touched == [f"interaction_log_p{day:%Y%m%d}"]
    # What it replaces: by id alone, every partition (each day, the days ahead, the default).
    by_id_alone = partitions_in_plan(conn, "UPDATE drift.interaction_log SET correct = false WHERE id = %(id)s", label)
    assert len(by_id_alone) > DAYS

    with driftloop.connect(db_url) as dl:
        assert dl.feedback(row_id, correct=False) == {"interaction_id": row_id, "feedback": None, "correct": False}
        assert dl.feedback(row_id, feedback=-1) == {"interaction_id": row_id, "feedback": -1, "correct": False}
        with pytest.raises(InputError, match="no interaction with id"):
            dl.feedback(10**12, correct=True)
        with pytest.raises(InputError, match="nothing to update"):
            dl.feedback(row_id)
        with pytest.raises(InputError, match="-1, 0 or 1"):
            dl.feedback(row_id, feedback=5)
    assert conn.execute("SELECT feedback, correct FROM drift.interaction_log WHERE id = %s", (row_id,)).fetchone() == (
        -1,
        False,
    )
    # The rollups followed the label (its day counts one correct answer fewer).
    conn.execute("SELECT drift.compact_rollups()")
    assert conn.execute(
        "SELECT sum(correct) FROM drift.interaction_rollup WHERE bucket >= %s AND bucket < %s",
        (day, day + timedelta(days=1)),
    ).fetchone() == (9,)


def test_a_back_filled_row_is_found_in_its_old_partition(conn: psycopg.Connection[Any], db_url: str) -> None:
    log_history(conn, 5)
    old_day = midnight() - 4 * timedelta(days=1)
    # Written today into a day long past: its id is newer than every row of the days after.
    [(late_id,)] = conn.execute(
        "INSERT INTO drift.interaction_log (model, created_at, response) VALUES ('bot', %s, 'ok') RETURNING id",
        (old_day + timedelta(hours=20),),
    ).fetchall()
    conn.execute("SELECT drift.compact_rollups()")  # folds the id spans that follow each other
    # Its day keeps two spans (its traffic's, and the late row's far beyond the newer days').
    spans = conn.execute(
        "SELECT count(*) FROM drift.interaction_id_ranges WHERE starts = %s", (old_day,)
    ).fetchone()
    assert spans == (2,)
    assert conn.execute("SELECT starts FROM drift.interaction_steps(%s)", (late_id,)).fetchall() == [(old_day,)]
    with driftloop.connect(db_url) as dl:
        assert dl.feedback(late_id, correct=True)["correct"] is True


def test_a_history_back_filled_model_by_model_keeps_one_step_per_id(conn: psycopg.Connection[Any]) -> None:
    """Each model's days written in turn: every day gets two blocks of ids, far apart."""
    for model in ("a-bot", "b-bot"):
        conn.execute(
            """INSERT INTO drift.interaction_log (model, created_at, response)
               SELECT %s, %s::timestamptz - d * interval '1 day', 'ok' FROM generate_series(20, 1, -1) d""",
            (model, midnight()),
        )
    conn.execute("SELECT drift.compact_rollups()")
    assert conn.execute("SELECT count(*) FROM drift.interaction_id_ranges").fetchone() == (40,)  # 2 spans a day
    ids = [r[0] for r in conn.execute("SELECT id FROM drift.interaction_log").fetchall()]
    candidates = [len(conn.execute("SELECT 1 FROM drift.interaction_steps(%s)", (i,)).fetchall()) for i in ids]
    assert set(candidates) == {1}


def test_pruning_forgets_the_id_spans_of_dropped_partitions(conn: psycopg.Connection[Any]) -> None:
    log_history(conn, 10)
    conn.execute("SELECT count(*) FROM drift.prune_logs(interval '5 days')")
    oldest = conn.execute("SELECT min(starts) FROM drift.interaction_id_ranges").fetchone()[0]
    assert oldest >= midnight() - 5 * timedelta(days=1)
    assert conn.execute("SELECT min(created_at) FROM drift.interaction_log").fetchone()[0] >= oldest
