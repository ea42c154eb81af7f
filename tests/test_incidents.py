"""Incidents: the events of one model and kind whose windows overlap are one incident, the
route's actions run once per incident, and every event stays visible, linked to it."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from driftloop.worker import load_config, run_once
from tests.support.helpers import insert_events, write_config

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
H = timedelta(hours=1)


def incident_of(conn: psycopg.Connection[Any], event_id: int) -> int:
    row = conn.execute("SELECT incident_id FROM drift.drift_events WHERE id = %s", (event_id,)).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def test_overlapping_events_of_one_model_and_kind_form_one_incident(conn: psycopg.Connection[Any]) -> None:
    (centroid,) = insert_events(conn, ["bot"], "embedding", "centroid_distance", (T0 - H, T0))
    (novelty,) = insert_events(conn, ["bot"], "embedding", "novelty_rate", (T0 - H / 2, T0 + H / 2))
    (other_kind,) = insert_events(conn, ["bot"], "behavior", "refusal_rate", (T0 - H, T0))
    (other_model,) = insert_events(conn, ["other"], "embedding", "centroid_distance", (T0 - H, T0))
    assert incident_of(conn, centroid) == incident_of(conn, novelty)
    assert len({incident_of(conn, e) for e in (centroid, other_kind, other_model)}) == 3

    first = incident_of(conn, centroid)
    row = conn.execute(
        "SELECT events, metrics, status, window_start, window_end FROM drift.incident_status WHERE id = %s", (first,)
    ).fetchone()
    assert row == (2, ["centroid_distance", "novelty_rate"], "open", T0 - H, T0 + H / 2)

    # Once closed, a window that starts where the incident ended (the drift persisted after its
    # actions and cooldown) is a new incident that keeps the first one's pre-drift reference;
    # a window that starts later is a new incident with a reference of its own.
    conn.execute("UPDATE drift.drift_events SET status = 'resolved'")
    (touching,) = insert_events(conn, ["bot"], "embedding", "centroid_distance", (T0 + H / 2, T0 + 3 * H / 2),
                                details={"value": 0.3, "baseline_value": 0.2})  # fmt: skip
    assert incident_of(conn, touching) != first
    inherited = conn.execute(
        "SELECT reference->'metrics'->'centroid_distance'->>'baseline_value', reference->>'continues' "
        "FROM drift.incidents WHERE id = %s",
        (incident_of(conn, touching),),
    ).fetchone()
    assert inherited == ("0.0", str(first))  # the first incident's reference, not the new 0.2
    conn.execute("UPDATE drift.drift_events SET status = 'resolved'")
    (later,) = insert_events(conn, ["bot"], "embedding", "centroid_distance", (T0 + 3 * H, T0 + 4 * H))
    assert incident_of(conn, later) not in (first, incident_of(conn, touching))

    # Deleting the events (a simulation reset) leaves no empty incident behind.
    conn.execute("DELETE FROM drift.drift_events WHERE model = 'bot'")
    assert conn.execute("SELECT count(*) FROM drift.incidents WHERE model = 'bot'").fetchone() == (0,)


def test_an_event_against_a_baseline_the_incidents_action_moved_opens_a_new_incident(
    conn: psycopg.Connection[Any],
) -> None:
    """A reindex moved the baseline into the incident's span, and the drift goes on: the next
    event compares with the moved baseline, so the action was not enough. However its window
    overlaps, it opens a new incident (whose actions may run), continuing the first one."""
    conn.execute("INSERT INTO drift.baselines (model, kind, starts, ends) VALUES ('bot', 'embedding', %s, %s)",
                 (T0 - 24 * H, T0 - 2 * H))
    (first_event,) = insert_events(conn, ["bot"], "embedding", "mean_shift_evidence", (T0 - H, T0))
    (same_drift,) = insert_events(conn, ["bot"], "embedding", "novelty_rate", (T0 - H / 2, T0 + H / 2))
    first = incident_of(conn, first_event)
    assert incident_of(conn, same_drift) == first  # the baseline is still the pre-drift one
    conn.execute("UPDATE drift.drift_events SET status = 'resolved'")
    # The incident's reindex: the baseline moves to the first event's window.
    conn.execute("UPDATE drift.baselines SET starts = %s, ends = %s WHERE model = 'bot'", (T0 - H, T0))
    (after,) = insert_events(conn, ["bot"], "embedding", "centroid_distance", (T0 - H / 4, T0 + 3 * H / 4))
    assert incident_of(conn, after) != first
    continues = conn.execute("SELECT reference->>'continues' FROM drift.incidents WHERE id = %s",
                             (incident_of(conn, after),)).fetchone()
    assert continues == (str(first),)


def test_a_routes_actions_run_once_per_incident(conn: psycopg.Connection[Any], db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    script = tmp_path / "on_drift.py"
    script.write_text(
        f"import sys, json\nopen({str(log)!r}, 'a').write(str(json.load(sys.stdin)['event']['id']) + '\\n')\n"
    )
    config = write_config(
        tmp_path,
        f"""
[worker]
listen = false
[actions.log_it]
type = "command"
argv = ["{sys.executable}", "{script}"]
[actions.second]
type = "command"
argv = ["{sys.executable}", "{script}"]
[[routes]]
kind = "embedding"
actions = ["log_it", "second"]
""",
    )
    first = insert_events(conn, ["bot"], "embedding", "centroid_distance", (T0 - H, T0))
    second = insert_events(conn, ["bot"], "embedding", "novelty_rate", (T0 - H / 2, T0))
    done = run_once(db_url, load_config(str(config)), concurrency=2)
    assert sorted(d.status for d in done) == ["resolved", "resolved"]
    # Each action ran once, for the incident's first event; the second event skipped both.
    assert log.read_text().split() == [str(first[0]), str(first[0])]
    runs = conn.execute("SELECT event_id, action, outcome FROM drift.action_runs ORDER BY id").fetchall()
    assert runs == [(first[0], "log_it", "succeeded"), (first[0], "second", "succeeded")]
    row = conn.execute("SELECT resolution FROM drift.drift_events WHERE id = %s", (second[0],)).fetchone()
    assert row is not None
    skipped = row[0]["actions"]
    assert [(a["action"], a["outcome"]) for a in skipped] == [("log_it", "skipped"), ("second", "skipped")]
    incident = incident_of(conn, first[0])
    assert all(f"already succeeded for incident {incident}" in a["summary"] for a in skipped)
    assert conn.execute("SELECT actions_succeeded FROM drift.incident_status").fetchone() == (["log_it", "second"],)


def test_prompt_updates_run_once_per_metric_of_an_incident(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        '[worker]\nlisten = false\n[actions.log_it]\ntype = "command"\nargv = ["true"]\n'
        '[[routes]]\nkind = "behavior"\nactions = ["update_system_prompt", "log_it"]\n',
    )
    (refusals,) = insert_events(conn, ["bot"], "behavior", "refusal_rate", (T0 - H, T0))
    (toxicity,) = insert_events(conn, ["bot"], "behavior", "toxicity_rate", (T0 - H / 2, T0 + H / 2))
    assert incident_of(conn, refusals) == incident_of(conn, toxicity)
    run_once(db_url, load_config(str(config)))
    runs = conn.execute("SELECT event_id, action FROM drift.action_runs WHERE outcome = 'succeeded' ORDER BY id")
    # The prompt gets each metric's guidance; the incident-level action runs once.
    assert runs.fetchall() == [(refusals, "update_system_prompt"), (refusals, "log_it"),
                               (toxicity, "update_system_prompt")]  # fmt: skip
