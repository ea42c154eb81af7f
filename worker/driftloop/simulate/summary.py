"""The demo's console summary, in the seed's pipeline style, built from a recorded run.

The check lines and "DRIFT DETECTED" reasons are the ones `driftloop check` prints
(driftloop.report), taken from the engine's report at the simulated time of each model's
first drift event and at the end of the run.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from driftloop import report
from driftloop.simulate.outcomes import Point, RunRecord, false_alarms, format_delay, outcomes

WIDTH = 70
RULE = "=" * WIDTH


def banner(text: str) -> list[str]:
    return ["", RULE, f"{text:^{WIDTH}}", RULE]


def _row(model: str, p: Point) -> dict[str, Any]:
    return {
        "model": model,
        "kind": p.kind,
        "metric": p.metric,
        "score": p.score,
        "threshold": p.threshold,
        "p_value": p.p_value,
        "n_current": p.n_current,
        "n_baseline": p.n_baseline,
        "drifted": p.drifted,
        "value": p.value,
        "baseline_value": p.baseline_value,
    }


def _checks_at(run: RunRecord, model: str, as_of: datetime) -> list[dict[str, Any]]:
    return [_row(model, p) for p in run.timeline.get(model, []) if p.as_of == as_of]


def detection_lines(run: RunRecord) -> list[str]:
    lines = banner("PHASE 1: DRIFT DETECTION")
    for model, scenario in run.models.items():
        events = [e for e in run.events if e.model == model]
        if not events:
            last = run.timeline.get(model, [])
            at = last[-1].as_of if last else run.ends
            lines.append(f"Model: {model} ({scenario}) — no drift event; checks at {at:%m-%d %H:%M}")
        else:
            at = min(e.as_of for e in events)
            lines.append(f"Model: {model} ({scenario}) — first drift event at {at:%m-%d %H:%M} (simulated)")
        rows = _checks_at(run, model, at)
        lines.extend(report.check_line(r) for r in rows)
        lines.extend("  " + report.drift_reason(r) for r in rows if r["drifted"])
    return lines


def action_lines(run: RunRecord) -> list[str]:
    lines = banner("PHASE 2: AUTOMATED RESPONSE")
    if not run.actions:
        lines.append("No actions: no drift event was raised.")
    for a in run.actions:
        names = ", ".join(a.actions) or "no action"
        detail = f": {a.detail.splitlines()[0][:120]}" if a.detail else ""
        drift = f"{a.model} {a.kind}/{a.metric}"
        lines.append(f"  {a.sim_at:%m-%d %H:%M}  {drift} -> {names} [{a.outcome}]{detail}")
    return lines


def recovery_lines(run: RunRecord) -> list[str]:
    lines = banner("PHASE 3: RECOVERY (checks at the end of the run)")
    for model in run.models:
        points = run.timeline.get(model, [])
        if not points:
            continue
        rows = _checks_at(run, model, points[-1].as_of)
        lines.append(f"Model: {model}")
        lines.extend(report.check_line(r) for r in rows)
    return lines


def closing_lines(run: RunRecord, report_path: str | None) -> list[str]:
    results = outcomes(run)
    detected = [o for o in results if o.detected]
    recovered = [o for o in results if o.recovered]
    missed = [o for o in results if not o.detected]
    lines = banner("✅ PIPELINE COMPLETED SUCCESSFULLY")
    described = ", ".join(
        f"{o.truth.model} {o.truth.kind}/{o.event.metric if o.event else o.truth.metric} after {format_delay(o.delay)}"
        for o in detected
    )
    lines.append(
        f"Drifts detected: {len(detected)} of {len(results)} injected" + (f" ({described})" if described else "")
    )
    counts = Counter(name for a in run.actions for name in a.actions if a.outcome == "resolved")
    taken = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
    lines.append(f"Actions taken: {taken or 'none'}")
    lines.append(f"Recovered after the action: {len(recovered)} of {len(results)} (no drift vs the current baseline)")
    # Per injected drift, the latest incident of its model and kind, judged against the
    # baseline from before the drift (a reindex or retrain moved the engine's own).
    latest = {
        (o.truth.model, o.truth.kind): max(
            (i for i in run.incidents if i.model == o.truth.model and i.kind == o.truth.kind),
            key=lambda i: i.id,
            default=None,
        )
        for o in results
    }
    back = [i.recovered_vs_reference for i in latest.values() if i and i.recovered_vs_reference is not None]
    if back:
        lines.append(
            f"Back in the original baseline's band: {sum(back)} of {len(back)} judged "
            "(against the baseline from before the drift)"
        )
    alarms = false_alarms(run)
    lines.append(
        f"False alarms: {len(alarms)}"
        + (" (" + ", ".join(f"{e.model}/{e.metric}" for e in alarms) + ")" if alarms else "")
    )
    if missed:
        lines.append("Missed: " + ", ".join(f"{o.truth.model} {o.truth.kind}/{o.truth.metric}" for o in missed))
    if report_path:
        lines.append(f"Report: {report_path}")
    lines.append(RULE)
    return lines


def render(run: RunRecord, report_path: str | None = None) -> str:
    lines = detection_lines(run) + action_lines(run) + recovery_lines(run) + closing_lines(run, report_path)
    return "\n".join(lines)
