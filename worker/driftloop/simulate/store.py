"""Reading and writing a simulation run's own rows (drift.simulation_*)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from driftloop.simulate.outcomes import Action, Event, Incident, Point, RunRecord, Truth
from driftloop.simulate.queries import query


def record_action(conn: psycopg.Connection[Any], run_id: int, processed: Any, sim_at: datetime, detail: str) -> None:
    """One worker pass over one event (a `driftloop.worker` ProcessedEvent), at simulated time."""
    conn.execute(
        query("insert_action"),
        {
            "run_id": run_id,
            "model": processed.model,
            "event_id": processed.event_id,
            "sim_at": sim_at,
            "kind": processed.kind,
            "metric": processed.metric,
            # Only the actions that ran: a later event of an incident skips the ones already done.
            "actions": [a.action for a in processed.actions if a.outcome != "skipped"],
            "outcome": processed.status,
            "detail": detail[:4000] or None,
        },
    )


def load_run(conn: psycopg.Connection[Any], run_id: int) -> RunRecord:
    row = conn.execute(query("run_row"), {"run_id": run_id}).fetchone()
    if row is None:
        raise LookupError(f"no simulation run {run_id}")
    _id, command, seed, starts, baseline_ends, ends, step, params = row
    args = {"run_id": run_id}
    models = dict(conn.execute(query("run_models"), args).fetchall())
    truths = [Truth(*r) for r in conn.execute(query("run_drifts"), args).fetchall()]
    events = [Event(*r) for r in conn.execute(query("run_events"), args).fetchall()]
    actions = [
        Action(m, e, at, k, met, tuple(names), outcome, detail)
        for m, e, at, k, met, names, outcome, detail in conn.execute(query("run_actions"), args).fetchall()
    ]
    timeline: dict[str, list[Point]] = {m: [] for m in models}
    for model, *rest in conn.execute(query("run_timeline"), args).fetchall():
        timeline[model].append(Point(*rest))
    from driftloop.history import query as history_query

    span = {"models": list(models), "starts": starts, "ends": ends}
    incidents = [
        Incident(i, m, k, first, tuple(ids), tuple(metrics), tuple(acts), ref or {}, tuple(rec or ()))
        for i, m, k, first, ids, metrics, acts, ref, rec in conn.execute(history_query("incidents"), span).fetchall()
    ]
    return RunRecord(
        run_id=run_id,
        command=command,
        seed=seed,
        starts=starts,
        baseline_ends=baseline_ends,
        ends=ends,
        step=step,
        models=models,
        truths=truths,
        events=events,
        actions=actions,
        timeline=timeline,
        params=dict(params or {}),
        incidents=incidents,
    )
