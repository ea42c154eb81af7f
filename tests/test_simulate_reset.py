"""Simulations share a database with real models and never touch them: their own model
names, --reset deleting only what a simulation created, no worker runs on others' events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner

import driftloop
from driftloop.cli import main
from driftloop.simulate.runner import Options, Plan, run_simulation
from driftloop.simulate.scenarios import SCENARIOS

USER_MODEL = "support-bot"


def log_user_model(url: str) -> None:
    """A real application's model: interactions and embeddings logged an hour ago."""
    rng = np.random.default_rng(0)
    at = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        {"model": USER_MODEL, "created_at": at, "prompt": f"q{i}", "response": "a", "toxicity": 0.01,
         "correct": True, "embedding": rng.standard_normal(16)}
        for i in range(150)
    ]  # fmt: skip
    with driftloop.connect(url) as client:
        client.log_interactions(rows)


def small_run(url: str, name: str = "control", *, reset: bool = False, act: bool = True) -> int:
    options = Options(scenarios=(SCENARIOS[name],), seed=3, days=0.125, rate_per_minute=4, reset=reset, act=act)
    return run_simulation(url, options, Plan.make(days=0.125, rate_per_minute=4))


def rows_per_model(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of each model over every table of schema drift that has a model column."""
    tables = conn.execute(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = 'drift' AND column_name = 'model' AND table_name IN"
        " (SELECT table_name FROM information_schema.tables WHERE table_schema = 'drift'"
        "  AND table_type = 'BASE TABLE')"
    ).fetchall()
    counts: dict[str, int] = {}
    for (table,) in tables:
        for model, n in conn.execute(f'SELECT model, count(*) FROM drift."{table}" GROUP BY model').fetchall():
            counts[model] = counts.get(model, 0) + n
    return counts


def test_reruns_get_their_own_names_and_reset_deletes_only_simulated_models(
    db_url: str, conn: psycopg.Connection
) -> None:
    log_user_model(db_url)
    user_rows = rows_per_model(conn)[USER_MODEL]

    small_run(db_url, "refusal_spike")
    second = small_run(db_url, "refusal_spike")
    models = sorted(m for m in rows_per_model(conn) if m != USER_MODEL)
    # The second run found sim-refusal-spike taken and used a name of its own.
    assert models == ["sim-refusal-spike", f"sim-refusal-spike-{second}"]
    # Both acted: events, action runs (no model column: found through their foreign key), prompts.
    assert conn.execute("SELECT count(*) FROM drift.action_runs").fetchone()[0] >= 2

    # A name no simulation created is refused, even when asked for explicitly.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not models created by a simulation"):
        conn.execute("SELECT drift.delete_simulated_models(ARRAY[%s, 'sim-refusal-spike'])", (USER_MODEL,))

    third = small_run(db_url, reset=True)
    counts = rows_per_model(conn)
    assert counts[USER_MODEL] == user_rows
    assert sorted(m for m in counts if m != USER_MODEL) == ["sim-control"]
    assert conn.execute("SELECT count(*) FROM drift.action_runs").fetchone()[0] == 0
    runs = conn.execute("SELECT id FROM drift.simulation_runs").fetchall()
    assert runs == [(third,)]


def test_the_simulation_acts_only_on_its_own_models_events(db_url: str, conn: psycopg.Connection) -> None:
    log_user_model(db_url)
    (event_id,) = conn.execute(
        "INSERT INTO drift.drift_events (model, kind, metric, score, threshold) "
        "VALUES (%s, 'behavior', 'refusal_rate', 0.2, 0.05) RETURNING id",
        (USER_MODEL,),
    ).fetchone()
    small_run(db_url, "refusal_spike")
    # The user's event is exactly as it was, left for a real worker ...
    assert conn.execute("SELECT status, attempts FROM drift.drift_events WHERE id = %s", (event_id,)).fetchone() == (
        "pending",
        0,
    )
    # ... while the simulation's own event was acted on and resolved.
    own = conn.execute("SELECT status FROM drift.drift_events WHERE model = 'sim-refusal-spike'").fetchall()
    assert own and all(status == "resolved" for (status,) in own)
    assert conn.execute("SELECT status FROM drift.simulation_runs").fetchone() == ("finished",)


def test_simulate_command(db_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["simulate", "--scenario", "toxicity-spike", "--days", "0.25", "--rate", "5", "--report-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "Drifts detected: 1 of 1 injected (sim-toxicity-spike behavior/toxicity_rate after" in result.output
    assert "Actions taken: update_system_prompt x1" in result.output
    assert "False alarms: 0" in result.output
    assert (tmp_path / "sim-toxicity-spike.png").stat().st_size > 10_000
    assert "| sim-toxicity-spike | toxicity_spike |" in (tmp_path / "report.md").read_text()


def test_simulate_command_rejects_an_unknown_scenario(db_url: str) -> None:
    result = CliRunner().invoke(main, ["simulate", "--scenario", "meteor-strike"])
    assert result.exit_code == 2
    assert "unknown scenario 'meteor-strike'" in result.output
