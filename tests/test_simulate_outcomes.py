"""How a run is judged: matching events to injected drifts, delays, recovery, false alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from driftloop.simulate.markdown import render
from driftloop.simulate.outcomes import Action, Event, Point, RunRecord, Truth, false_alarms, outcomes

T0 = datetime(2026, 1, 1, tzinfo=UTC)
M = timedelta(minutes=1)


def point(minute: int, drifted: bool, metric: str = "refusal_rate") -> Point:
    return Point(T0 + minute * M, "behavior", metric, 0.1, 0.01, 0.1 if drifted else 0.01, 0.05, 0.001, drifted)


def run(events: list[Event], actions: list[Action], drifted_minutes: set[int]) -> RunRecord:
    truth = Truth("m", "refusal_spike", "behavior", "refusal_rate", "refusal_spike", T0 + 60 * M, "refusals rise")
    return RunRecord(
        run_id=1, command="simulate", seed=1, starts=T0 - 240 * M, baseline_ends=T0, ends=T0 + 180 * M,
        step=5 * M, models={"m": "refusal_spike", "c": "control"}, truths=[truth], events=events, actions=actions,
        timeline={"m": [point(t, t in drifted_minutes) for t in range(5, 185, 5)], "c": []},
    )  # fmt: skip


def event(id_: int, minute: int, model: str = "m", metric: str = "refusal_rate") -> Event:
    return Event(id_, model, "behavior", metric, T0 + minute * M, 0.1, 0.05, "resolved")


def action(event_id: int, minute: int) -> Action:
    return Action("m", event_id, T0 + minute * M, "behavior", "refusal_rate", ("update_system_prompt",), "resolved", "")


def test_detected_with_delay_action_and_recovery_since_it_stayed_under() -> None:
    # Detected at 80 (20 min after the start), fixed, raised again at 140, under for good from 150.
    r = run([event(1, 80), event(2, 140)], [action(1, 80), action(2, 140)], {80, 85, 140, 145})
    (o,) = outcomes(r)
    assert o.detected and o.event is not None and o.event.id == 1
    assert o.delay == 20 * M
    assert [a.event_id for a in o.actions] == [1, 2]
    assert o.recovered and o.recovered_at == T0 + 150 * M
    assert false_alarms(r) == []
    md = render(r, {})
    assert "| m | refusal_spike | refusals rise, from 01-01 01:00 | behavior / refusal_rate | yes | 20 min |" in md
    assert "update_system_prompt at 01:20 (resolved); update_system_prompt at 02:20 (resolved)" in md
    assert "yes (since 02:30) | — | 0.100 → 0.100 |" in md  # no incident recorded: original band not judged


def test_events_before_the_drift_or_of_another_kind_are_false_alarms() -> None:
    early = event(1, 30)  # before the injection at 60
    other_model = event(2, 90, model="c")
    wrong_kind = Event(3, "m", "embedding", "centroid_distance", T0 + 90 * M, 0.3, 0.15, "resolved")
    r = run([early, other_model, wrong_kind], [], {30})
    assert false_alarms(r) == [early, other_model, wrong_kind]
    (o,) = outcomes(r)
    assert not o.detected and o.delay is None and o.recovered is False
    assert "| 01-01 00:30 |" in render(r, {})


def test_a_drift_still_raised_at_the_end_is_not_recovered() -> None:
    r = run([event(1, 80)], [action(1, 80)], {80, 175, 180})
    (o,) = outcomes(r)
    assert o.detected and o.recovered is False and o.recovered_at is None


def test_a_new_report_replaces_the_timelines_of_the_previous_one(tmp_path: Path) -> None:
    from driftloop.simulate.report import write_report

    first = run([event(1, 80)], [action(1, 80)], {80})
    write_report(first, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "m.png", "report.html", "report.md"]
    (tmp_path / "notes.txt").write_text("the user's own file")
    second = run([], [], set())
    second.models = {"m-2": "refusal_spike"}
    second.timeline = {"m-2": second.timeline["m"]}
    write_report(second, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-2.png", "notes.txt", "report.html", "report.md"]
