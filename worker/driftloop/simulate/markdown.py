"""`report.md`: per injected drift, detected or not, the delay, the action and the recovery."""

from __future__ import annotations

from pathlib import Path

from driftloop.simulate.outcomes import RunRecord, false_alarms, format_delay, outcomes


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def render(run: RunRecord, images: dict[str, Path]) -> str:
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
        "| value before → at end |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
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
            f"{_num(o.value_before, 3)} → {_num(o.value_at_end, 3)} |"
        )
    alarms = false_alarms(run)
    lines += [
        "",
        "*Recovered* is the engine's verdict at the end of the run: the metric no longer drifted against",
        "its baseline, which the reindex and retrain actions move to the drifted window. The last",
        "column shows the metric's own value just before the drift and at the end, in absolute terms.",
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
    lines += ["", "## Timelines", ""]
    for model, image in images.items():
        lines += [f"### {model} ({run.models.get(model, '')})", "", f"![{model}]({image.name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _num(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def write(run: RunRecord, images: dict[str, Path], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(run, images))
    return path
