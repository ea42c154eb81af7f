"""One PNG timeline per model: each metric against its decision line over time, with the
baseline periods shaded, the injected drift (simulations), the events and the actions.

Used by the demo, `driftloop simulate --report-dir` and `driftloop report` alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the demo runs in terminals and CI

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402

from driftloop.simulate.outcomes import Point, RunRecord  # noqa: E402

Progress = Callable[[str, int, int], None]

ACTION_COLOURS = {"reindex": "#2ca02c", "update_system_prompt": "#9467bd", "retrain": "#8c564b"}

# Contract metrics first, in a fixed order; any others the engine reports follow.
METRIC_ORDER = ("centroid_distance", "novelty_rate", "mean_shift_evidence", "whitened_mean_shift",
                "refusal_rate", "toxicity_rate", "accuracy")
# Each panel in the metric's own terms (accuracy as accuracy, not as its drop).
AXIS_LABELS = {
    "centroid_distance": "centroid cosine distance\nfrom the baseline",
    "novelty_rate": "novelty rate\n(share far from baseline)",
    "mean_shift_evidence": "evidence the mean moved\n(nats, CUSUM)",
    "whitened_mean_shift": "whitened mean shift\nover 3 hours (squared)",
    "refusal_rate": "refusal rate\n(share of answers)",
    "toxicity_rate": "toxicity rate\n(share of answers)",
    "accuracy": "accuracy\n(share correct)",
}


def metrics_of(run: RunRecord, model: str) -> list[str]:
    seen = {p.metric for p in run.timeline.get(model, [])}
    return [m for m in METRIC_ORDER if m in seen] + sorted(seen - set(METRIC_ORDER))


def _series(metric: str, p: Point) -> tuple[float | None, float | None]:
    """(plotted value, decision line) of a point, in the metric's own terms.

    Accuracy's score is its drop below the baseline; plotted as accuracy, its decision line
    is the baseline accuracy minus the allowed drop.
    """
    if metric == "accuracy":
        line = None if p.baseline_value is None or p.threshold is None else p.baseline_value - p.threshold
        return p.value, line
    return p.score, p.threshold


def _event_y(metric: str, score: float | None, points: list[Point], at: datetime) -> float | None:
    if metric != "accuracy":
        return score
    near = [p for p in points if p.as_of <= at]
    return near[-1].value if near else None


def _axis_start(run: RunRecord, model: str) -> datetime:
    starts = [b.starts for b in run.baselines.get(model, [])] + [run.starts]
    points = run.timeline.get(model, [])
    if points:
        starts.append(points[0].as_of)
    return min(starts)


def plot_model(run: RunRecord, model: str, path: Path) -> Path:
    metrics = metrics_of(run, model)
    rows = max(1, len(metrics))
    fig, axes = plt.subplots(rows, 1, figsize=(12, 2.5 * rows + 1.6), sharex=True, squeeze=False)
    truths = [t for t in run.truths if t.model == model]
    events = [e for e in run.events if e.model == model]
    actions = [a for a in run.actions if a.model == model and a.actions]
    legend: dict[str, Artist] = {}  # one legend for all panels, above them
    for ax, metric in zip(axes[:, 0], metrics, strict=False):
        points = [p for p in run.timeline[model] if p.metric == metric]
        kind = points[0].kind if points else ""
        times = [p.as_of for p in points]
        values, lines = zip(*(_series(metric, p) for p in points), strict=True) if points else ((), ())
        ax.plot(times, values, color="#1f77b4", lw=1.5, label="metric (score; accuracy as accuracy)")
        ax.plot(times, lines, color="#d62728", lw=1.1, ls="--", label="threshold (past it and significant: drift)")
        if metric == "accuracy":
            ax.plot(times, [p.baseline_value for p in points], color="#555555", lw=0.9, ls=":",
                    label="current baseline value")  # fmt: skip
        # The engine's verdict also needs a significant test and enough samples, not only a
        # score past the line: shade where it judged the metric drifted.
        ax.fill_between(
            times, 0, 1, where=[bool(p.drifted) for p in points], step="post",
            transform=ax.get_xaxis_transform(), color="#d62728", alpha=0.12, lw=0, label="drifted (engine)",
        )  # fmt: skip
        shaded = [b for b in run.baselines.get(model, []) if b.kind == kind]
        if shaded:
            for b in shaded:
                original = "original" in b.label
                ax.axvspan(b.starts, b.ends, facecolor="#bbbbbb" if not original else "none", alpha=0.35,
                           hatch="//" if original else None, edgecolor="#888888" if original else "none", lw=0,
                           label="original baseline (before the actions)" if original else "baseline")  # fmt: skip
        else:
            ax.axvspan(run.starts, run.baseline_ends, color="#bbbbbb", alpha=0.35, lw=0, label="baseline")
        for inc in run.incidents:
            ref = (inc.reference.get("metrics") or {}).get(metric)
            if inc.model == model and metric == "accuracy" and ref and ref.get("baseline_value") is not None:
                band = float(ref["baseline_value"]) - float(ref["threshold"])
                ax.axhline(band, color="#ff7f0e", lw=1, ls="-.", label="original baseline's band (lower edge)")
        for t in truths:
            ax.axvline(t.starts_at, color="#ff7f0e", lw=1.5, ls=":", label="drift injected")
        for e in events:
            if e.metric == metric:
                y = _event_y(metric, e.score, points, e.as_of)
                if y is not None:
                    ax.plot([e.as_of], [y], marker="v", ms=10, color="#d62728", ls="none", clip_on=False,
                            label="drift event", zorder=5)  # fmt: skip
        for a in actions:
            if a.kind == kind:
                colour = ACTION_COLOURS.get(a.actions[0], "#17becf")
                ax.axvline(a.sim_at, color=colour, lw=1.6, label="action: " + ", ".join(a.actions))
        ax.set_ylabel(AXIS_LABELS.get(metric, metric.replace("_", " ")), fontsize=10)
        ax.margins(y=0.18)  # room above the highest marker
        ax.grid(alpha=0.3)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes[-1, 0].set_xlim(_axis_start(run, model), run.ends)  # the whole baseline in view
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    axes[-1, 0].set_xlabel("data time (UTC)" if run.command == "report" else "simulated time (UTC)", fontsize=10)
    scenario = run.models.get(model, "")
    title = f"{model} — {scenario.replace('_', ' ')}" if scenario else model
    fig.suptitle(title, fontsize=13, y=0.995)
    fig.legend(list(legend.values()), list(legend), loc="upper center", bbox_to_anchor=(0.5, 0.965), ncol=3,
               fontsize=10, frameon=False)  # fmt: skip
    fig.autofmt_xdate()
    legend_rows = -(-len(legend) // 3)
    top = 1 - (0.35 + 0.28 * legend_rows) / fig.get_figheight()
    fig.tight_layout(rect=(0, 0, 1, top))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
