"""The check an action makes before it moves a baseline to an event's window.

A baseline is what every later window is compared with. An event row says which window to
move it to, and an event row can be forged (or be stale): moved to an empty or ancient
window, a baseline with n = 0 makes that model's drift undetectable for good. So the
window is checked against the rollups, which only the log triggers write:

- it must hold at least `min_samples` rows of that kind (what detection needs on both
  sides, so a window a real event came from always passes);
- it must not end in the future, nor before the model's current baseline ends (a
  corrective action moves a baseline forward, never back).

A refused window is a permanent failure: retrying cannot add rows to the past.
"""

from __future__ import annotations

from driftloop.worker.actions.base import ActionContext, ActionError
from driftloop.worker.queries import query


def check_baseline_window(ctx: ActionContext, kind: str) -> int:
    """Raise a permanent ActionError unless the event's window may become `kind`'s baseline; returns n."""
    event = ctx.event
    if event.window_start is None or event.window_end is None or event.window_end <= event.window_start:
        raise ActionError(f"event {event.id} has no valid window to move the {kind} baseline to", permanent=True)
    window = f"[{event.window_start.isoformat()}, {event.window_end.isoformat()})"
    with ctx.connection() as conn:
        row = conn.execute(
            query("baseline_window"),
            {"kind": kind, "model": event.model, "starts": event.window_start, "ends": event.window_end},
        ).fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    n, min_samples, baseline_ends, latest_end = row
    what = "embeddings" if kind == "embedding" else "labelled or rated interactions"
    if n < min_samples:
        raise ActionError(
            f"refusing to move the {kind} baseline of {event.model!r} to the event's window {window}: "
            f"the rollups hold {n} {what} there (min_samples = {min_samples}); "
            f"event {event.id} does not match the logged data",
            permanent=True,
        )
    if event.window_end > latest_end:
        raise ActionError(
            f"refusing to move the {kind} baseline of {event.model!r} to {window}: the window ends in the future",
            permanent=True,
        )
    if baseline_ends is not None and event.window_end < baseline_ends:
        raise ActionError(
            f"refusing to move the {kind} baseline of {event.model!r} back to {window}: "
            f"the current baseline ends later ({baseline_ends.isoformat()})",
            permanent=True,
        )
    return int(n)
