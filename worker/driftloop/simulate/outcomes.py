"""What happened to each injected drift: detected or not, how fast, what was done, recovered or not.

Pure functions over the rows a run recorded, so the report and the tests judge a run
the same way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Truth:
    model: str
    scenario: str
    kind: str
    metric: str
    effect: str
    starts_at: datetime
    description: str


@dataclass(frozen=True)
class Point:
    as_of: datetime
    kind: str
    metric: str
    value: float | None
    baseline_value: float | None
    score: float | None
    threshold: float | None
    p_value: float | None
    drifted: bool | None
    n_current: int | None = None
    n_baseline: int | None = None


@dataclass(frozen=True)
class Event:
    id: int
    model: str
    kind: str
    metric: str
    as_of: datetime
    score: float | None
    threshold: float | None
    status: str
    incident_id: int | None = None


@dataclass(frozen=True)
class Action:
    model: str
    event_id: int
    sim_at: datetime
    kind: str
    metric: str
    actions: tuple[str, ...]
    outcome: str
    detail: str | None


@dataclass(frozen=True)
class Baseline:
    """A reference window drawn on the timelines: the current one, or an incident's original."""

    model: str
    kind: str
    starts: datetime
    ends: datetime
    label: str


@dataclass(frozen=True)
class Incident:
    """Events of one model and kind with overlapping windows, and its recovery at the end.

    `recovery` holds drift.incident_recovery's rows at the end of the report: per metric the
    value against the ORIGINAL baseline's band and the engine's verdict against the current one.
    """

    id: int
    model: str
    kind: str
    first_as_of: datetime
    event_ids: tuple[int, ...]
    metrics: tuple[str, ...]
    actions: tuple[str, ...]
    reference: dict[str, Any]
    recovery: tuple[dict[str, Any], ...]

    @property
    def recovered_vs_reference(self) -> bool | None:
        judged = [r["within_reference"] for r in self.recovery if r.get("within_reference") is not None]
        return all(judged) if judged else None

    @property
    def recovered_vs_current(self) -> bool | None:
        judged = [r["within_current"] for r in self.recovery if r.get("within_current") is not None]
        return all(judged) if judged else None


@dataclass
class Outcome:
    truth: Truth
    event: Event | None = None
    actions: list[Action] = field(default_factory=list)
    recovered: bool | None = None
    recovered_at: datetime | None = None
    # The metric's value (not its score) just before the drift and at the end of the run:
    # the engine judges against a baseline an action may have moved, this shows the change
    # in absolute terms (e.g. accuracy 0.96 -> 0.82 while no longer "drifted").
    value_before: float | None = None
    value_at_end: float | None = None

    @property
    def detected(self) -> bool:
        return self.event is not None

    @property
    def delay(self) -> timedelta | None:
        return self.event.as_of - self.truth.starts_at if self.event else None


@dataclass
class RunRecord:
    run_id: int
    command: str
    seed: int
    starts: datetime
    baseline_ends: datetime
    ends: datetime
    step: timedelta
    models: dict[str, str]  # model -> scenario
    truths: list[Truth]
    events: list[Event]
    actions: list[Action]
    timeline: dict[str, list[Point]]  # model -> points in time order
    params: dict[str, object] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    # Reference windows to shade per model; empty: [starts, baseline_ends) for every model.
    baselines: dict[str, list[Baseline]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)  # model -> honest remarks


def _matches(truth: Truth, model: str, kind: str, metric: str) -> bool:
    # Any embedding metric answers an embedding drift: the engine reports a new topic through
    # its novelty rate as well as the centroid distance; their moved baseline is shared.
    return model == truth.model and kind == truth.kind and (kind == "embedding" or metric == truth.metric)


def outcomes(run: RunRecord) -> list[Outcome]:
    out = []
    for truth in run.truths:
        result = Outcome(truth)
        events = sorted(
            (e for e in run.events if _matches(truth, e.model, e.kind, e.metric) and e.as_of >= truth.starts_at),
            key=lambda e: e.as_of,
        )
        if events:
            result.event = events[0]
            ids = {e.id for e in events}
            result.actions = [a for a in run.actions if a.event_id in ids]
        metric = result.event.metric if result.event else truth.metric
        points = [p for p in run.timeline.get(truth.model, []) if p.metric == metric]
        before = [p for p in points if p.as_of <= truth.starts_at]
        result.value_before = before[-1].value if before else None
        result.value_at_end = points[-1].value if points else None
        if result.actions and points:
            acted = result.actions[0].sim_at
            after = [p for p in points if p.as_of > acted]
            result.recovered = bool(after) and after[-1].drifted is False
            if result.recovered:
                # Since when it has stayed under: a re-raised drift restarts the clock.
                settled = len(after)
                while settled > 0 and after[settled - 1].drifted is False:
                    settled -= 1
                result.recovered_at = after[settled].as_of
        elif points:
            result.recovered = False
        out.append(result)
    return out


def false_alarms(run: RunRecord) -> list[Event]:
    """Events no injected drift explains: a kind that was never injected into that model,
    or raised before the injection started."""
    starts: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for t in run.truths:
        starts[(t.model, t.kind)].append(t.starts_at)
    return [e for e in run.events if not any(e.as_of >= s for s in starts.get((e.model, e.kind), []))]


def format_delay(delay: timedelta | None) -> str:
    if delay is None:
        return "—"
    minutes = delay.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
