"""One PNG timeline per simulated model: each metric's score against its threshold over
simulated time, with the baseline period, the injected drift, the events and the actions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the demo runs in terminals and CI

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.artist import Artist  # noqa: E402

from driftloop.simulate.outcomes import RunRecord  # noqa: E402

Progress = Callable[[str, int, int], None]

ACTION_COLOURS = {"reindex": "#2ca02c", "update_system_prompt": "#9467bd", "retrain": "#8c564b"}

# Contract metrics first, in a fixed order; any others the engine reports follow.
METRIC_ORDER = ("centroid_distance", "refusal_rate", "toxicity_rate", "accuracy")
# What `score` is for each metric (the engine compares it with the threshold).
SCORE_LABELS = {
    "centroid_distance": "centroid cosine\ndistance",
    "refusal_rate": "refusal rate",
    "toxicity_rate": "toxicity rate",
    "accuracy": "accuracy drop\nvs baseline",
}


def metrics_of(run: RunRecord, model: str) -> list[str]:
    seen = {p.metric for p in run.timeline.get(model, [])}
    return [m for m in METRIC_ORDER if m in seen] + sorted(seen - set(METRIC_ORDER))


def plot_model(run: RunRecord, model: str, path: Path) -> Path:
    metrics = metrics_of(run, model)
    fig, axes = plt.subplots(
        max(1, len(metrics)), 1, figsize=(11, 2.3 * max(1, len(metrics)) + 0.8), sharex=True, squeeze=False
    )
    truths = [t for t in run.truths if t.model == model]
    events = [e for e in run.events if e.model == model]
    actions = [a for a in run.actions if a.model == model]
    legend: dict[str, Artist] = {}  # one legend for all panels, above them
    for ax, metric in zip(axes[:, 0], metrics, strict=False):
        points = [p for p in run.timeline[model] if p.metric == metric]
        times = [p.as_of for p in points]
        ax.plot(times, [p.score for p in points], color="#1f77b4", lw=1.4, label="score")
        ax.plot(times, [p.threshold for p in points], color="#d62728", lw=1, ls="--", label="threshold")
        # The engine's verdict also needs a significant test and enough samples, not only a
        # score above the threshold: shade where it judged the metric drifted.
        ax.fill_between(
            times, 0, 1, where=[bool(p.drifted) for p in points], step="post",
            transform=ax.get_xaxis_transform(), color="#d62728", alpha=0.12, lw=0, label="drifted (engine)",
        )  # fmt: skip
        ax.axvspan(
            run.starts,
            run.baseline_ends,
            color="#cccccc",
            alpha=0.35,
            lw=0,
            label=f"baseline (from {run.starts:%m-%d %H:%M})",
        )
        for t in truths:
            ax.axvline(t.starts_at, color="#ff7f0e", lw=1.5, ls=":", label="drift injected")
        for e in events:
            if e.metric == metric:
                ax.plot([e.as_of], [e.score], marker="v", ms=9, color="#d62728", ls="none", label="drift event")
        for a in actions:
            if a.metric == metric:
                colour = ACTION_COLOURS.get(a.actions[0] if a.actions else "", "#17becf")
                ax.axvline(a.sim_at, color=colour, lw=1.5, label="action: " + ", ".join(a.actions))
        ax.set_ylabel(SCORE_LABELS.get(metric, metric.replace("_", " ")))
        ax.grid(alpha=0.3)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    # The monitored period, with a glimpse of the baseline before it.
    axes[-1, 0].set_xlim(run.baseline_ends - (run.ends - run.baseline_ends) / 10, run.ends)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    axes[-1, 0].set_xlabel("simulated time (UTC)")
    scenario = run.models.get(model, "")
    fig.suptitle(f"{model} — {scenario.replace('_', ' ')}", fontsize=12)
    fig.legend(list(legend.values()), list(legend), loc="upper center", bbox_to_anchor=(0.5, 0.965), ncol=4,
               fontsize=8, frameon=False)  # fmt: skip
    fig.autofmt_xdate()
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
