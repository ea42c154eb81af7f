"""`report.md`: per injected drift, detected or not, the delay, the action and the recovery."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from driftloop.simulate.outcomes import RunRecord, false_alarms, format_delay, outcomes


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def render(run: RunRecord, images: dict[str, Path]) -> str:
    if run.command == "report":
        return render_models(run, images)
    lines = [
        f"# driftloop {run.command} report — run {run.run_id}",
        "",
        f"Simulated time {run.starts:%Y-%m-%d %H:%M} → {run.ends:%Y-%m-%d %H:%M} UTC; baseline until "
        f"{run.baseline_ends:%Y-%m-%d %H:%M}; drift evaluated every {run.step.total_seconds() / 60:.0f} "
        f"simulated minutes; seed {run.seed}.",
    ]
    if run.params:
        lines.append("Parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(run.params.items())) + ".")
    lines += [
        "",
        "## Injected drifts",
        "",
        "| model | scenario | injected drift | kind / metric | detected | delay | action | recovered "
        "| back in original band | value before → at end |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    results = outcomes(run)
    for o in results:
        t = o.truth
        action = "; ".join(f"{', '.join(a.actions)} at {a.sim_at:%H:%M} ({a.outcome})" for a in o.actions) or "—"
        recovered = _yes_no(o.recovered)
        if o.recovered and o.recovered_at is not None:
            recovered += f" (since {o.recovered_at:%H:%M})"
        detected = _yes_no(o.detected)
        if o.event and o.event.metric != t.metric:
            detected += f" ({o.event.metric})"
        lines.append(
            f"| {t.model} | {t.scenario} | {t.description}, from {t.starts_at:%m-%d %H:%M} | "
            f"{t.kind} / {t.metric} | {detected} | {format_delay(o.delay)} | {action} | {recovered} | "
            f"{_yes_no(_original_band(run, o.event.id if o.event else None))} | "
            f"{_num(o.value_before, 3)} → {_num(o.value_at_end, 3)} |"
        )
    alarms = false_alarms(run)
    lines += [
        "",
        "*Recovered* is the engine's verdict at the end of the run: the metric no longer drifted against",
        "its baseline, which the reindex and retrain actions move to the drifted window. *Back in the",
        "original band* judges the metric against the baseline from before the drift instead (see",
        "Incidents below). The last column shows the metric's own value just before the drift and at the",
        "end, in absolute terms.",
        "",
        "## Events no injected drift explains",
        "",
    ]
    if alarms:
        lines += ["| model | kind / metric | at | score | threshold |", "| --- | --- | --- | --- | --- |"]
        for e in alarms:
            lines.append(
                f"| {e.model} | {e.kind} / {e.metric} | {e.as_of:%m-%d %H:%M} | {_num(e.score)} | {_num(e.threshold)} |"
            )
    else:
        lines.append("None: the drift-free control and the pre-drift periods raised no event.")
    lines += ["", "## Incidents and recovery", ""]
    lines += incident_lines(run, list(run.models))
    notes = [f"{m}: {n}" for m in run.models for n in threshold_notes(run, m)]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", "## Timelines", ""]
    for model, image in images.items():
        lines += [f"### {model} ({run.models.get(model, '')})", "", f"![{model}]({image.name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _original_band(run: RunRecord, event_id: int | None) -> bool | None:
    for inc in run.incidents:
        if event_id is not None and event_id in inc.event_ids:
            return inc.recovered_vs_reference
    return None


def _recovery_cell(row: dict[str, object]) -> str:
    value, limit, metric = row.get("value"), row.get("reference_limit"), str(row.get("metric"))
    if row.get("within_reference") is None:
        return f"{metric}: not judged (needs the original baseline's sample)"
    relation = "≥" if metric == "accuracy" else "≤"
    verdict = "in" if row["within_reference"] else "**out**"
    return f"{metric}: {_num(value, 3)} vs {relation} {_num(limit, 3)} ({verdict})"  # type: ignore[arg-type]


def incident_lines(run: RunRecord, models: list[str]) -> list[str]:
    """Incidents with their recovery judged against the ORIGINAL (pre-drift) baseline."""
    incidents = [i for i in run.incidents if i.model in models]
    if not incidents:
        return ["No incidents."]
    lines = [
        "| incident | model | kind | first seen | events | metrics | actions | vs the original baseline's band "
        "| back in original band | no drift vs current baseline |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for inc in incidents:
        cells = "; ".join(_recovery_cell(r) for r in inc.recovery) or "—"
        lines.append(
            f"| {inc.id} | {inc.model} | {inc.kind} | {inc.first_as_of:%m-%d %H:%M} | "
            f"{', '.join(f'#{e}' for e in inc.event_ids)} | {', '.join(inc.metrics)} | "
            f"{', '.join(inc.actions) or 'none'} | {cells} | {_yes_no(inc.recovered_vs_reference)} | "
            f"{_yes_no(inc.recovered_vs_current)} |"
        )
    lines += [
        "",
        "One incident groups the events of one model and kind whose windows overlap; its actions run once.",
        "The original band is the pre-drift baseline's: accuracy at least its baseline accuracy minus",
        "`accuracy_drop_threshold`, a rate at most max(threshold, baseline rate), the current centroid",
        "within the first event's threshold of the ORIGINAL baseline centroid. A reindex or retrain moves the",
        "engine's baseline to the drifted window, so \"no drift vs current baseline\" can be yes while the",
        "metric is still out of its original band.",
    ]
    return lines


def threshold_notes(run: RunRecord, model: str) -> list[str]:
    """Where a score sits past its plotted line without a drift verdict, say why."""
    notes = []
    by_metric: dict[str, list[tuple[bool, bool]]] = {}
    for p in run.timeline.get(model, []):
        if p.score is not None and p.threshold is not None:
            by_metric.setdefault(p.metric, []).append((p.score > p.threshold, bool(p.drifted)))
    for metric, flags in by_metric.items():
        past = sum(1 for above, drifted in flags if above and not drifted)
        if past and past * 10 >= len(flags):
            notes.append(
                f"{metric}: past its plotted threshold at {past} of {len(flags)} points without a drift verdict. "
                "Crossing the line is necessary, not sufficient: the verdict also needs a significant test "
                "against the baseline at the per-evaluation level (details.look_alpha; see docs/detection.md)"
                + (". For novelty_rate the line is the baseline's own expected rate." if metric == "novelty_rate"
                   else ".")
            )
    return notes


def render_models(run: RunRecord, images: dict[str, Path]) -> str:
    """report.md of `driftloop report`: any model, from its rollups, events and incidents."""
    lines = [
        f"# driftloop report — {', '.join(run.models)}",
        "",
        f"Data time {run.starts:%Y-%m-%d %H:%M} → {run.ends:%Y-%m-%d %H:%M} UTC; every metric evaluated every "
        f"{run.step.total_seconds() / 60:.0f} min with `drift.drift_report(as_of)` (rollups only); current window "
        f"{run.params.get('current_window')}, cooldown {run.params.get('cooldown')}. Written "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC (wall clock).",
        "",
        "The timelines are recomputed now: every point compares its window with the baseline in force",
        "today. Where an action moved a baseline (the hatched span is the original one), points before",
        "the move differ from what the engine saw then; the event markers show the score at detection.",
    ]
    for model in run.models:
        events = [e for e in run.events if e.model == model]
        actions = [a for a in run.actions if a.model == model]
        lines += ["", f"## {model}", "", "### Drift events", ""]
        if events:
            lines += ["| event | incident | data time | kind / metric | score | threshold | status |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            lines += [
                f"| #{e.id} | {e.incident_id or '—'} | {e.as_of:%m-%d %H:%M} | {e.kind} / {e.metric} | "
                f"{_num(e.score)} | {_num(e.threshold)} | {e.status} |"
                for e in events
            ]
        else:
            lines.append("No drift events in this period.")
        lines += ["", "### Actions", ""]
        if actions:
            lines += ["| event | at (data time) | kind / metric | actions run | outcome | detail |",
                      "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            lines += [
                f"| #{a.event_id} | {a.sim_at:%m-%d %H:%M} | {a.kind} / {a.metric} | {', '.join(a.actions) or 'none'}"
                f" | {a.outcome} | {(a.detail or '').splitlines()[0][:160] if a.detail else ''} |"
                for a in actions
            ]
        else:
            lines.append("No actions in this period.")
        lines += ["", "### Incidents and recovery", ""]
        lines += incident_lines(run, [model])
        notes = threshold_notes(run, model) + run.notes.get(model, [])
        lines += ["", "### Notes", ""]
        lines += [f"- {n}" for n in notes] or ["None."]
        if model in images:
            lines += ["", f"![{model}]({images[model].name})"]
    return "\n".join(lines).rstrip() + "\n"


def _num(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def write(run: RunRecord, images: dict[str, Path], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(run, images))
    return path
