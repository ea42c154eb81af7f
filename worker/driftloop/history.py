"""A model's history for `driftloop report`, read from the rollups, events and incidents.

The result is a `RunRecord`, the same record a simulation run loads, so the timelines,
report.md and report.html of any model are drawn by the same code as the demo's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from driftloop import named_sql
from driftloop.simulate.outcomes import Action, Baseline, Event, Incident, Point, RunRecord

MAX_POINTS = 160  # evaluations per timeline: enough to see a one-hour window move, cheap to compute
DEFAULT_SPAN = timedelta(days=1)  # without a baseline: the last day


query = named_sql.beside(__file__, "history.sql")


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def step_for(starts: datetime, ends: datetime) -> timedelta:
    """Whole minutes, at most MAX_POINTS steps over the range."""
    minutes = max(1, -(-int((ends - starts).total_seconds() // 60) // MAX_POINTS))
    return timedelta(minutes=minutes)


def load_history(
    conn: psycopg.Connection[Any],
    models: list[str] | None = None,
    starts: datetime | None = None,
    ends: datetime | None = None,
) -> RunRecord:
    """Every metric of the models at steps over [starts, ends], with events, actions, incidents."""
    names = [r[0] for r in conn.execute(query("models"), {"models": models}).fetchall()]
    if models:
        missing = sorted(set(models) - set(names))
        if missing:
            raise LookupError(f"unknown model: {', '.join(missing)} (no data logged)")
    if not names:
        raise LookupError("no models logged yet: nothing to report")
    row = conn.execute(query("default_span"), {"models": names}).fetchone()
    assert row is not None
    first_baseline, last_seen, now, cooldown, window = row
    if ends is None:  # up to the latest evaluation, its minute included
        latest = last_seen or now
        ends = _minute(latest) + (timedelta(minutes=1) if latest != _minute(latest) else timedelta(0))
    ends = _minute(ends)
    starts = _minute(starts or first_baseline or ends - DEFAULT_SPAN)
    if not starts < ends:
        raise ValueError(f"--from ({starts:%Y-%m-%d %H:%M}) must be before --to ({ends:%Y-%m-%d %H:%M})")
    step = step_for(starts, ends)
    params = {"models": names, "starts": starts, "ends": ends, "step": step}
    timeline: dict[str, list[Point]] = {m: [] for m in names}
    for model, *rest in conn.execute(query("timeline"), params).fetchall():
        timeline[model].append(Point(*rest))
    events: list[Event] = []
    actions: list[Action] = []
    for ev in conn.execute(query("events"), params).fetchall():
        id_, model, kind, metric, as_of, score, threshold, status, incident, closed_as_of, resolution, error = ev
        events.append(Event(id_, model, kind, metric, as_of, score, threshold, status, incident))
        ran = [a for a in (resolution or {}).get("actions", []) if a.get("outcome") != "skipped"]
        skipped = [a for a in (resolution or {}).get("actions", []) if a.get("outcome") == "skipped"]
        if resolution is not None or error:
            detail = "; ".join(a.get("summary") or a.get("outcome", "") for a in ran + skipped) or (error or "")
            actions.append(
                Action(model, id_, closed_as_of or as_of, kind, metric, tuple(a["action"] for a in ran), status, detail)
            )
    baselines: dict[str, list[Baseline]] = {m: [] for m in names}
    for model, kind, b_starts, b_ends, source, _set_at in conn.execute(query("baselines"), params).fetchall():
        baselines[model].append(Baseline(model, kind, b_starts, b_ends, f"{kind} baseline ({source})"))
    incidents = [
        Incident(i, m, k, first, tuple(ids), tuple(metrics), tuple(acts), ref or {}, tuple(rec or ()))
        for i, m, k, first, ids, metrics, acts, ref, rec in conn.execute(query("incidents"), params).fetchall()
    ]
    for inc in incidents:  # the original baseline, where an action moved it since
        ref = inc.reference.get("baseline") or {}
        if ref.get("starts") and not any(
            b.kind == inc.kind and b.starts.isoformat() == _iso(ref["starts"]) for b in baselines[inc.model]
        ):
            baselines[inc.model].append(
                Baseline(inc.model, inc.kind, _parse(ref["starts"]), _parse(ref["ends"]),
                         f"{inc.kind} original baseline (incident {inc.id})")
            )  # fmt: skip
    run = RunRecord(
        run_id=0,
        command="report",
        seed=0,
        starts=starts,
        baseline_ends=starts,
        ends=ends,
        step=step,
        models={m: "" for m in names},
        truths=[],
        events=events,
        actions=actions,
        timeline=timeline,
        params={"current_window": str(window), "cooldown": str(cooldown)},
        incidents=incidents,
        baselines=baselines,
    )
    run.notes = {m: cooldown_notes(run, m, cooldown) for m in names}
    return run


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _iso(value: str) -> str:
    return _parse(value).isoformat()


def cooldown_notes(run: RunRecord, model: str, cooldown: timedelta) -> list[str]:
    """Where a metric drifted and no event was raised because a closed one's cooldown ran."""
    notes = []
    events = [e for e in run.events if e.model == model]
    closed = {a.event_id: a.sim_at for a in run.actions if a.model == model}
    by_metric: dict[str, list[Point]] = {}
    for p in run.timeline.get(model, []):
        by_metric.setdefault(p.metric, []).append(p)
    for metric, points in by_metric.items():
        noted_until: datetime | None = None
        for p in points:
            if not p.drifted or (noted_until and p.as_of <= noted_until):
                continue
            mine = [e for e in events if e.metric == metric]
            if any(e.as_of == p.as_of for e in mine):
                continue  # an event was raised here
            if any(e.as_of < p.as_of and (e.id not in closed or closed[e.id] >= p.as_of) for e in mine):
                continue  # an open event already covers it
            last = max((closed[e.id] for e in mine if e.id in closed and closed[e.id] < p.as_of), default=None)
            if last is not None and last + cooldown > p.as_of:
                noted_until = last + cooldown
                notes.append(
                    f"{metric} drifted at {p.as_of:%m-%d %H:%M} — no action: cooldown until "
                    f"{noted_until:%m-%d %H:%M} (the previous event closed at {last:%H:%M})"
                )
    return notes
